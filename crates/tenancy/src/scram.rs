//! Password verifiers: computed on our side so a cleartext password never travels in SQL (where
//! `log_statement` or `pg_stat_activity` could show it), and checked against what the server
//! stores to detect a password changed behind Terraform's back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// A fresh SCRAM-SHA-256 verifier with a random salt, in the form `ALTER ROLE … PASSWORD` takes.
/// It contains only base64 and `$:` characters, so it needs no escaping beyond quoting.
pub(crate) fn verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

/// Most PBKDF2 iterations we spend on checking a stored verifier. Ours use PostgreSQL's default,
/// 4096; a login may store a verifier of its own with any count, and a refresh that recomputed a
/// billion iterations would stall. A verifier above this counts as a password changed outside
/// Terraform, which the next apply resets.
pub(crate) const MAX_CHECKED_ITERATIONS: u32 = 16 * 4096;

/// Whether `password` is the one behind `stored` (a `pg_authid.rolpassword` value): SCRAM-SHA-256
/// verifiers are recomputed with their own salt and iteration count (up to
/// [`MAX_CHECKED_ITERATIONS`]), MD5 hashes with the user name. `None` for a format we do not
/// understand. CPU-bound: call it off the async workers.
pub(crate) fn matches(stored: &str, password: &str, username: &str) -> Option<bool> {
    if let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") {
        return scram_matches(rest, password);
    }
    if stored.starts_with("md5") && stored.len() == 35 {
        return Some(postgres_protocol::password::md5(password.as_bytes(), username) == stored);
    }
    None
}

/// `rest` is `<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5803 as PostgreSQL stores it).
fn scram_matches(rest: &str, password: &str) -> Option<bool> {
    let (params, keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored_key, _server_key) = keys.split_once(':')?;
    let iterations: u32 = iterations.parse().ok().filter(|n| *n > 0)?;
    if iterations > MAX_CHECKED_ITERATIONS {
        return Some(false);
    }
    let salt = STANDARD.decode(salt).ok()?;
    let stored_key = STANDARD.decode(stored_key).ok()?;

    // As libpq and the server do: SASLprep when the password allows it, the raw bytes otherwise.
    let prepared = match stringprep::saslprep(password) {
        Ok(prepared) => prepared.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    };
    // SCRAM's Hi() is PBKDF2-HMAC-SHA-256 with one output block.
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(&prepared, &salt, iterations, &mut salted);
    let client_key = hmac_sha256(&salted, b"Client Key")?;
    Some(Sha256::digest(client_key).as_slice() == stored_key.as_slice())
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Option<[u8; 32]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_verifier_matches_its_password_only() {
        for password in ["s3cret", "p a'ss\\word \"x\"", "пароль", ""] {
            let stored = verifier(password);
            assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
            assert_eq!(matches(&stored, password, "u"), Some(true), "{password:?}");
            assert_eq!(matches(&stored, "other", "u"), Some(false));
        }
    }

    #[test]
    fn two_verifiers_of_one_password_differ_by_salt() {
        assert_ne!(verifier("same"), verifier("same"));
    }

    #[test]
    fn an_expensive_verifier_counts_as_changed_without_being_computed() {
        let stored = verifier("pw");
        let (params, keys) = stored
            .strip_prefix("SCRAM-SHA-256$")
            .and_then(|rest| rest.split_once('$'))
            .expect("verifier layout");
        let salt = params.split_once(':').expect("iterations:salt").1;
        let heavy = format!("SCRAM-SHA-256${}:{salt}${keys}", u32::MAX);
        let started = std::time::Instant::now();
        assert_eq!(matches(&heavy, "pw", "u"), Some(false));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn md5_and_unknown_formats() {
        let md5 = postgres_protocol::password::md5(b"pw", "alice");
        assert_eq!(matches(&md5, "pw", "alice"), Some(true));
        assert_eq!(matches(&md5, "pw", "bob"), Some(false));
        assert_eq!(matches("plain", "plain", "u"), None);
        assert_eq!(matches("SCRAM-SHA-256$x:y$z", "pw", "u"), None);
    }
}
