//! Passwords (Argon2id), bearer tokens (random, stored only as SHA-256) and the roles that
//! decide what an authenticated user may do.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 hashes whatever it is given; a megabyte password would still cost the server.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Tokens are prefixed so a leaked one is recognisable in a secret scanner.
const TOKEN_PREFIX: &str = "ust_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Developer,
    Customer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Developer, Role::Customer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Customer => "customer",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

pub fn check_password_strength(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's recommendation), PHC string.
/// CPU-heavy: call it through [`hash_password_blocking`] from async code.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_password_strength(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

pub async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    let outcome = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::internal())?;
    outcome.map_err(|error| match error {
        PasswordError::TooShort | PasswordError::TooLong => {
            ApiError::invalid("password", error.to_string())
        }
        PasswordError::Hash(detail) => {
            tracing::error!(error = detail, "password hashing failed");
            ApiError::internal()
        }
    })
}

/// Verifies on a blocking thread. Without a stored hash (unknown email) it verifies against a
/// dummy hash anyway, so the answer takes as long either way and does not reveal which emails
/// have accounts.
pub async fn verify_password_blocking(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let ok = match &stored {
            Some(stored) => verify(&password, stored),
            None => {
                let _ = verify(&password, dummy_hash());
                false
            }
        };
        ok && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            tracing::warn!("a stored password hash is not a PHC string");
            false
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password, only for timing").unwrap_or_default())
}

/// A new bearer token: 32 random bytes, URL-safe base64, with a recognisable prefix.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database stores instead of the token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The bearer token of a request, if it sent one that is well-formed.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "this endpoint needs `Authorization: Bearer <token>` (POST /api/authenticate)",
            )
        })?
        .to_str()
        .map_err(|_| invalid_token())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid_token)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 200 {
        return Err(invalid_token());
    }
    Ok(token)
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "the bearer token is not valid")
}

/// Every authenticated request runs this: $1 is the token's SHA-256.
pub const TOKEN_LOOKUP: &str = "SELECT u.id, u.email, u.role, t.expiry > now() AS live \
     FROM public.tokens t JOIN public.users u ON u.id = t.user_id WHERE t.token_hash = $1";

/// The user behind a valid, unexpired bearer token. Extracting it is what makes an endpoint
/// require authentication.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub token_hash: Vec<u8>,
}

impl AuthUser {
    pub fn require(&self, allowed: &[Role], action: &str) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|role| role.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "{action} needs the role {}; you are {}",
            names.join(" or "),
            self.role.as_str()
        )))
    }

    /// admin or developer: changes to customers and orders.
    pub fn require_writer(&self, action: &str) -> Result<(), ApiError> {
        self.require(&[Role::Admin, Role::Developer], action)
    }

    pub fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        self.require(&[Role::Admin], action)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let hash = token_hash(token);
        let client = state.pool.get().await?;
        let statement = client.prepare_cached(TOKEN_LOOKUP).await?;
        let row = client
            .query_opt(&statement, &[&hash])
            .await?
            .ok_or_else(invalid_token)?;
        if !row.try_get::<_, bool>("live")? {
            return Err(ApiError::unauthorized(
                "token_expired",
                "the bearer token has expired or was logged out; authenticate again",
            ));
        }
        let role: String = row.try_get("role")?;
        let role = Role::parse(&role).ok_or_else(|| {
            tracing::error!(role, "a user has a role this build does not know");
            ApiError::internal()
        })?;
        Ok(AuthUser {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            role,
            token_hash: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse", &hash));
        assert!(!verify("wrong horse!", &hash));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), a.as_bytes());
    }
}
