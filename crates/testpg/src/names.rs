//! Unique identifiers and random secrets for tests.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::TestPgError;

/// Longest name [`unique_name`] returns: leaves room for suffixes such as `_developer` within
/// PostgreSQL's 63-byte identifier limit.
pub const UNIQUE_NAME_MAX_LEN: usize = 30;

/// A short lowercase identifier, unique per call within this process and across processes alive
/// at the same time: `<prefix>_<pid base 36>_<counter base 36>`, at most
/// [`UNIQUE_NAME_MAX_LEN`] characters.
///
/// The prefix is lowercased; characters other than `a-z`, `0-9` and `_` become `_`, a leading digit
/// gets a `t` in front, and the prefix is shortened when needed so the suffix always survives.
/// The result is a valid unquoted SQL identifier, so it can name databases and roles directly.
///
/// ```
/// let a = usualstore_testpg::unique_name("Tenant-Test");
/// let b = usualstore_testpg::unique_name("Tenant-Test");
/// assert_ne!(a, b);
/// assert!(a.starts_with("tenant_test_") && a.len() <= 30);
/// ```
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!(
        "_{}_{}",
        base36(u64::from(std::process::id())),
        base36(count)
    );

    let mut head: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !head.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        head.insert(0, 't');
    }
    head.truncate(UNIQUE_NAME_MAX_LEN.saturating_sub(suffix.len()));
    head + &suffix
}

fn base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// 128 random bits as 32 hex characters, from the kernel's generator (no extra dependency, and
/// hex needs no quoting in SQL literals, connection strings or shell lines).
pub(crate) fn random_secret() -> Result<String, TestPgError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .map_err(|source| TestPgError::io("reading /dev/urandom for a password", source))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }

    #[test]
    fn unique_names_are_short_valid_identifiers() {
        let long = unique_name("A-very-long-Prefix-that-goes-on-and-on");
        assert!(long.len() <= UNIQUE_NAME_MAX_LEN, "{long}");
        assert!(long.starts_with("a_very_"), "{long}");
        let digit = unique_name("9lives");
        assert!(digit.starts_with("t9lives_"), "{digit}");
        let empty = unique_name("");
        assert!(empty.starts_with("t_"), "{empty}");
        for name in [long, digit, empty] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn unique_names_differ_per_call() {
        let names: std::collections::HashSet<_> = (0..1000).map(|_| unique_name("x")).collect();
        assert_eq!(names.len(), 1000);
    }

    #[test]
    fn secrets_are_random_hex() {
        let a = random_secret().unwrap();
        let b = random_secret().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
