//! Passwords (Argon2id), bearer tokens (random, stored only as SHA-256) and the roles that
//! decide what an authenticated user may do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

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
/// CPU-heavy: call it through [`Hasher::hash`] from async code.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_password_strength(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// Runs Argon2 off the async threads, at most `concurrency` computations at once: each holds
/// 19 MiB while it runs, so this bounds the memory sign-ins can take whatever the traffic.
/// Work that finds every slot taken waits up to `wait`, then gets 503 `busy` (with
/// `Retry-After`); the request timeout ends a wait too. A computation keeps its slot until it
/// finishes, even when the request that started it has been abandoned.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Hasher {
    pub fn new(concurrency: usize, wait: Duration) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(ApiError::internal()),
                Err(_) => {
                    tracing::warn!("every password-hashing slot is busy; answering 503");
                    return Err(ApiError::unavailable(
                        "busy",
                        "too many passwords are being checked at once; try again shortly",
                    ));
                }
            };
        tokio::task::spawn_blocking(move || {
            let outcome = work();
            drop(permit);
            outcome
        })
        .await
        .map_err(|_| ApiError::internal())
    }

    /// A PHC string for a new password (checked for length first).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        check_password_strength(&password)
            .map_err(|error| ApiError::invalid("password", error.to_string()))?;
        self.run(move || hash_password(&password))
            .await?
            .map_err(|error| match error {
                PasswordError::TooShort | PasswordError::TooLong => {
                    ApiError::invalid("password", error.to_string())
                }
                PasswordError::Hash(detail) => {
                    tracing::error!(error = detail, "password hashing failed");
                    ApiError::internal()
                }
            })
    }

    /// Whether `password` matches `stored`. Without a stored hash (unknown email) it verifies
    /// against a dummy hash anyway, so the answer takes as long either way and does not reveal
    /// which emails have accounts.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move || {
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
    }
}

/// Argon2's 19 MiB blocks come from the allocator once per hash. glibc serves such blocks from
/// per-thread arenas after the first few and keeps them, so a burst of sign-ins on many blocking
/// threads left the process hundreds of MiB larger for good. Blocks of 1 MiB and more are
/// mapped and unmapped directly instead; call before any thread starts.
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// glibc's `M_MMAP_THRESHOLD` (malloc.h).
        const M_MMAP_THRESHOLD: i32 = -3;
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes the allocator's tuning and takes plain integers; it is
        // called at start-up, before other threads allocate.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 20);
        }
    }
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
pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

pub type TokenHash = [u8; 32];

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

fn token_expired() -> ApiError {
    ApiError::unauthorized(
        "token_expired",
        "the bearer token has expired or was logged out; authenticate again",
    )
}

/// The user of a token, $1 being its SHA-256: id, role, and how long the token still lives in
/// seconds by the database's clock (zero or less: ended).
pub const TOKEN_USER: &str = "SELECT u.id, u.role, \
     extract(epoch FROM t.expiry - now())::float8 AS remaining \
     FROM public.tokens t JOIN public.users u ON u.id = t.user_id WHERE t.token_hash = $1";

/// The user behind a valid, unexpired bearer token. Extracting it is what makes an endpoint
/// require authentication.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: Role,
    pub token_hash: TokenHash,
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

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, router_state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_request_parts(parts, router_state).await?;
        let state = &state;
        let hash = token_hash(bearer_token(parts)?);
        if let Some((id, role)) = state.tokens.get(&hash) {
            return Ok(AuthUser {
                id,
                role,
                token_hash: hash,
            });
        }
        let asked = state.tokens.before_lookup();
        let client = state.shared.get().await?;
        let statement = client.prepare_cached(TOKEN_USER).await?;
        let row = client
            .query_opt(&statement, &[&&hash[..]])
            .await?
            .ok_or_else(invalid_token)?;
        drop(client);
        let remaining: f64 = row.try_get(2)?;
        if remaining.is_nan() || remaining <= 0.0 {
            return Err(token_expired());
        }
        let role: &str = row.try_get(1)?;
        let role = Role::parse(role).ok_or_else(|| {
            tracing::error!(role, "a user has a role this build does not know");
            ApiError::internal()
        })?;
        let id: i64 = row.try_get(0)?;
        state.tokens.remember(
            asked,
            hash,
            id,
            role,
            Duration::from_secs_f64(remaining.min(1e9)),
        );
        // Off the cached path: only a look-up (a round trip anyway) checks that someone listens
        // for tokens ended elsewhere.
        state.listener.wanted();
        Ok(AuthUser {
            id,
            role,
            token_hash: hash,
        })
    }
}

/// Tokens the database confirmed lately, so a client's burst of requests costs one look-up.
///
/// - An entry lives at most the cache's lifetime (a second at most, `TOKEN_CACHE_MS`), counted
///   from before the database was asked, and never past the token's own expiry: a logout or a
///   password change on another instance takes effect here within that second.
/// - On this instance a logout, a password, role or e-mail change and a user's deletion remove
///   the entries concerned at once, and an answer that was on its way while one of them happened
///   is not stored (it may predate the change). The same changes made by other instances arrive
///   as notifications ([`crate::token_listener`]) and remove entries the same way; the second
///   stays the backstop for whatever no notification announces.
/// - Only confirmed tokens are stored (a wrong token always asks the database), at most
///   [`MAX_CACHED_TOKENS`] of them.
pub struct TokenCache {
    lifetime: Duration,
    state: Mutex<CacheState>,
}

pub const MAX_CACHED_TOKENS: usize = 10_000;

#[derive(Default)]
struct CacheState {
    entries: HashMap<TokenHash, Cached, BuildPrehashed>,
    /// Bumped by every removal: an answer asked for before it is not stored.
    generation: u64,
}

struct Cached {
    user_id: i64,
    role: Role,
    until: Instant,
}

/// Taken before a look-up; [`TokenCache::remember`] stores the answer only if nothing was
/// removed in between.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    at: Instant,
    generation: u64,
}

impl TokenCache {
    pub fn new(lifetime: Duration) -> TokenCache {
        TokenCache {
            lifetime: lifetime.min(crate::config::MAX_TOKEN_CACHE),
            state: Mutex::new(CacheState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn get(&self, hash: &TokenHash) -> Option<(i64, Role)> {
        if self.lifetime.is_zero() {
            return None;
        }
        let now = Instant::now();
        let mut state = self.lock();
        match state.entries.get(hash) {
            Some(entry) if entry.until > now => Some((entry.user_id, entry.role)),
            Some(_) => {
                state.entries.remove(hash);
                None
            }
            None => None,
        }
    }

    pub fn before_lookup(&self) -> Asked {
        Asked {
            at: Instant::now(),
            generation: self.lock().generation,
        }
    }

    pub fn remember(
        &self,
        asked: Asked,
        hash: TokenHash,
        user_id: i64,
        role: Role,
        remaining: Duration,
    ) {
        if self.lifetime.is_zero() {
            return;
        }
        let until = asked.at + self.lifetime.min(remaining);
        let now = Instant::now();
        let mut state = self.lock();
        if state.generation != asked.generation || until <= now {
            return;
        }
        if state.entries.len() >= MAX_CACHED_TOKENS {
            state.entries.retain(|_, entry| entry.until > now);
            if state.entries.len() >= MAX_CACHED_TOKENS {
                return;
            }
        }
        state.entries.insert(
            hash,
            Cached {
                user_id,
                role,
                until,
            },
        );
    }

    /// The token was logged out.
    pub fn forget_token(&self, hash: &TokenHash) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.remove(hash);
    }

    /// The user changed (password, role, e-mail) or is gone: every token of theirs is asked
    /// about again.
    pub fn forget_user(&self, user_id: i64) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.retain(|_, entry| entry.user_id != user_id);
    }

    /// What another instance ended (see [`crate::token_listener`]): these tokens and every token
    /// of these users, under one lock and in one pass over the entries however many users are
    /// named, so a flood of notifications costs one pass per batch. Returns how many entries went.
    pub fn forget_ended(&self, tokens: &[TokenHash], users: &[i64]) -> usize {
        let mut state = self.lock();
        state.generation += 1;
        let before = state.entries.len();
        for hash in tokens {
            state.entries.remove(hash);
        }
        if !users.is_empty() {
            let users: std::collections::HashSet<i64> = users.iter().copied().collect();
            state
                .entries
                .retain(|_, entry| !users.contains(&entry.user_id));
        }
        before - state.entries.len()
    }

    /// Everything: an end may have been missed (no listener heard it), so every token is asked
    /// about again, and no answer on its way meanwhile is kept.
    pub fn forget_all(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }

    /// Entries held (some may have lived out their time and not been removed yet).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether tokens are remembered at all (`TOKEN_CACHE_MS` above 0).
    pub fn is_enabled(&self) -> bool {
        !self.lifetime.is_zero()
    }
}

/// Token hashes are SHA-256 digests, already uniformly distributed: their first eight bytes are
/// the map's hash (no SipHash over 32 bytes per request).
#[derive(Default, Clone, Copy)]
struct BuildPrehashed;

impl std::hash::BuildHasher for BuildPrehashed {
    type Hasher = Prehashed;

    fn build_hasher(&self) -> Prehashed {
        Prehashed(0)
    }
}

struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (index, byte) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*byte) << (8 * index);
        }
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
        assert_ne!(&token_hash(&a)[..], &a.as_bytes()[..32]);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn the_token_cache_forgets_what_changed() {
        let cache = TokenCache::new(Duration::from_secs(1));
        let (a, b) = (token_hash("a"), token_hash("b"));
        let asked = cache.before_lookup();
        cache.remember(asked, a, 1, Role::Admin, Duration::from_secs(60));
        cache.remember(asked, b, 2, Role::Customer, Duration::from_secs(60));
        assert_eq!(cache.get(&a), Some((1, Role::Admin)));
        cache.forget_token(&a);
        assert_eq!(cache.get(&a), None);
        assert_eq!(cache.get(&b), Some((2, Role::Customer)));
        // An answer asked for before a removal is not stored.
        cache.remember(asked, a, 1, Role::Admin, Duration::from_secs(60));
        assert_eq!(cache.get(&a), None);
        cache.forget_user(2);
        assert_eq!(cache.get(&b), None);
        // Ended elsewhere: named tokens and users go in one pass; nothing asked before is kept.
        let (c, d, e) = (token_hash("c"), token_hash("d"), token_hash("e"));
        let asked = cache.before_lookup();
        cache.remember(asked, c, 3, Role::Admin, Duration::from_secs(60));
        cache.remember(asked, d, 4, Role::Admin, Duration::from_secs(60));
        cache.remember(asked, e, 5, Role::Admin, Duration::from_secs(60));
        let late = cache.before_lookup();
        assert_eq!(cache.forget_ended(&[c, token_hash("unknown")], &[4, 99]), 2);
        assert_eq!((cache.get(&c), cache.get(&d)), (None, None));
        assert_eq!(cache.get(&e), Some((5, Role::Admin)));
        cache.remember(late, c, 3, Role::Admin, Duration::from_secs(60));
        assert_eq!(cache.get(&c), None);
        cache.forget_all();
        assert!(cache.is_empty());
        // Never past the token's own expiry.
        cache.remember(
            cache.before_lookup(),
            a,
            1,
            Role::Admin,
            Duration::from_millis(1),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(&a), None);
        // Off.
        let off = TokenCache::new(Duration::ZERO);
        off.remember(
            off.before_lookup(),
            a,
            1,
            Role::Admin,
            Duration::from_secs(60),
        );
        assert_eq!(off.get(&a), None);
    }
}
