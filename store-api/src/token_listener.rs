//! Tokens ended by other instances: every instance of a tenant hears, through PostgreSQL's
//! `LISTEN`/`NOTIFY`, what the others end, and forgets it at once instead of within the token
//! cache's second.
//!
//! - **Sending.** A logout, a user's change (password, role, e-mail, names) and a user's deletion
//!   call `pg_notify` in the statement or transaction that makes the change ([`NOTIFY`]), so the
//!   notification goes out exactly when the change commits, and never for one that rolled back.
//!   The payload names what to forget, `token:<SHA-256 in hex>` or `user:<id>`: never a token,
//!   and nothing a reader could use (a hash does not authenticate; the token table is the admin
//!   group's).
//! - **Listening.** Each tenant has one session of its own (outside the pool, opened like the
//!   pool's connections, from the same DSN and TLS settings) that `LISTEN`s on [`CHANNEL`]. It
//!   opens when the tenant first looks a token up (a catalogue-only tenant never holds one),
//!   holds a place in the connection budget and one connection of the database's limit (the pool
//!   is fitted one smaller), and closes with the tenant's other connections when the tenant is
//!   idle, evicted from the budget or removed.
//! - **Trust.** Notifications are scoped to the database, so tenants never hear each other; but
//!   any login of the tenant, of any role, may notify on the channel. A payload is therefore only
//!   ever used to forget cache entries (the next request asks the database, which decides):
//!   whatever it says, the worst it can do is cost look-ups. What does not parse is counted and
//!   ignored.
//! - **Fail safe.** Entries live at most `TOKEN_CACHE_MS` (one second) whether or not anyone
//!   listens; the listener only ends them sooner. While it is not listening (starting, lost,
//!   server restarting) nothing more is promised than that second, and every time it starts or
//!   stops listening the cache is emptied: an end announced meanwhile was not heard. Notifications
//!   that came faster than they were read are dropped and empty the cache too. A lost session is
//!   opened again after 0.1 s, doubling to at most 10 s while it keeps failing.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::Instrument;
use usualstore_pgtls::{Connector, Notifications};

use crate::auth::{TokenCache, TokenHash};
use crate::budget::Budget;
use crate::tenant::TenantName;

/// The channel every instance of a tenant listens on (NOTIFY is scoped to the database).
pub const CHANNEL: &str = "usualstore_tokens";

/// LISTEN takes an identifier, not a parameter: the constant channel, never anything built.
const LISTEN: &str = "LISTEN usualstore_tokens";

/// Sends a notification: $1 the channel, $2 the payload. Always parameters: a payload is data.
pub const NOTIFY: &str = "SELECT pg_catalog.pg_notify($1, $2)";

/// How the session shows in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "store-api token listener";

/// Notifications waiting to be read at most; beyond, they are dropped and the cache emptied.
const QUEUE: usize = 4096;
/// Notifications applied under one lock.
const BATCH: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A session that has said nothing for this long is asked whether it is still there: a peer
/// that vanished without closing (a network cut) would otherwise look like a quiet one.
const PING: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What a notification asks to forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// One token, by its SHA-256.
    Token(TokenHash),
    /// Every token of a user (password, role or e-mail changed, or the user is gone).
    User(i64),
}

impl Ended {
    pub fn payload(&self) -> String {
        match self {
            Ended::Token(hash) => {
                let mut payload = String::with_capacity(6 + 64);
                payload.push_str("token:");
                for byte in hash {
                    payload.push(hex_digit(byte >> 4));
                    payload.push(hex_digit(byte & 0xf));
                }
                payload
            }
            Ended::User(id) => format!("user:{id}"),
        }
    }

    /// Exactly what [`Ended::payload`] writes, nothing else: lower-case hex of 32 bytes, or a
    /// positive decimal id without sign or leading zeros.
    pub fn parse(payload: &str) -> Option<Ended> {
        if let Some(hex) = payload.strip_prefix("token:") {
            let bytes = hex.as_bytes();
            if bytes.len() != 64 {
                return None;
            }
            let mut hash = [0u8; 32];
            for (index, pair) in bytes.chunks_exact(2).enumerate() {
                hash[index] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
            }
            return Some(Ended::Token(hash));
        }
        let digits = payload.strip_prefix("user:")?;
        if digits.is_empty()
            || digits.len() > 19
            || digits.starts_with('0')
            || !digits.bytes().all(|byte| byte.is_ascii_digit())
        {
            return None;
        }
        digits.parse().ok().map(Ended::User)
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0xf)])
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Announces `ended` on `client`'s transaction (or, outside one, at once). Meant for the
/// transaction that makes the change, so the announcement commits with it.
pub async fn announce(
    client: &impl deadpool_postgres::GenericClient,
    ended: Ended,
) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(NOTIFY).await?;
    client
        .execute(&statement, &[&CHANNEL, &ended.payload()])
        .await?;
    Ok(())
}

/// Whether `error` is PostgreSQL refusing a notification at commit because its notification
/// queue is full. The queue is the whole server's: a session of any tenant that listens and
/// never reads (idle in a transaction) while gigabytes are notified fills it, and then every
/// transaction that notifies fails. A logout or a user's change must not fail with it, so the
/// caller does it again without the notification; other instances then end the token within
/// the cache's second, as they did before notifications.
pub fn queue_full(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::PROGRAM_LIMIT_EXCEEDED)
}

/// Says (at most once a minute) that an end went out without its notification.
pub fn warn_unannounced() {
    static WARNED: Mutex<Option<Instant>> = Mutex::new(None);
    let mut warned = lock(&WARNED);
    if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *warned = Some(Instant::now());
        tracing::warn!(
            "PostgreSQL's notification queue is full (a session listens without reading); \
             tokens ended now end on other instances within TOKEN_CACHE_MS, not at once"
        );
    }
}

/// One tenant's listener: at most one task, started on demand, stopped with the tenant's
/// connections.
pub struct TokenListener {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Whether a task runs: read on every token look-up, so an atomic rather than the mutex.
    running: AtomicBool,
    /// Whether the tenant may hold the session: the cache is on, the login reads tokens and one
    /// connection of the database's limit was kept for it (set when the pool is fitted).
    allowed: AtomicBool,
    /// Whether a token was ever looked up: the listener starts once it is also allowed.
    asked: AtomicBool,
}

/// What the task and the tenant's state share.
struct Shared {
    cache: Arc<TokenCache>,
    pg: tokio_postgres::Config,
    connector: Connector,
    budget: Arc<Budget>,
    key: Arc<str>,
    tenant: Arc<TenantName>,
    /// Sessions listening now (0 or 1; a counter, so a stopped task's late end cannot hide a
    /// new task's session).
    listening: AtomicUsize,
    sessions: AtomicU64,
    applied: AtomicU64,
    ignored: AtomicU64,
    forgotten: AtomicU64,
}

/// What the listener has done, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenerFigures {
    pub listening: bool,
    pub sessions: u64,
    pub applied: u64,
    pub ignored: u64,
    pub forgotten: u64,
}

/// What the listener's session is opened from.
pub struct ListenerSpec {
    pub cache: Arc<TokenCache>,
    /// The pool's configuration (DSN and session options); the application name is replaced.
    pub pg: tokio_postgres::Config,
    pub connector: Connector,
    pub budget: Arc<Budget>,
    pub key: Arc<str>,
    pub tenant: Arc<TenantName>,
}

#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("no place in the connection budget within the connect timeout")]
    Budget,
    #[error("{0}")]
    Database(String),
    #[error("LISTEN got no answer within {} s", PING_TIMEOUT.as_secs())]
    Timeout,
}

impl From<tokio_postgres::Error> for ListenError {
    fn from(error: tokio_postgres::Error) -> ListenError {
        ListenError::Database(crate::db::describe(&error))
    }
}

impl TokenListener {
    pub fn new(spec: ListenerSpec) -> TokenListener {
        let mut pg = spec.pg;
        pg.application_name(APPLICATION_NAME);
        TokenListener {
            shared: Arc::new(Shared {
                cache: spec.cache,
                pg,
                connector: spec.connector,
                budget: spec.budget,
                key: spec.key,
                tenant: spec.tenant,
                listening: AtomicUsize::new(0),
                sessions: AtomicU64::new(0),
                applied: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                forgotten: AtomicU64::new(0),
            }),
            task: Mutex::new(None),
            running: AtomicBool::new(false),
            allowed: AtomicBool::new(false),
            asked: AtomicBool::new(false),
        }
    }

    /// Lets the listener run from now on (or not): decided when the pool is fitted to the
    /// database's connection limit, which the tenant's first request starts, so its first token
    /// look-up may come before: then it starts here.
    pub fn allow(&self, allowed: bool) {
        let allowed = allowed && self.shared.cache.is_enabled();
        // SeqCst with `wanted`: of a look-up and this, at least one sees the other's mark.
        self.allowed.store(allowed, Ordering::SeqCst);
        if !allowed {
            self.stop();
        } else if self.asked.load(Ordering::SeqCst) {
            self.start();
        }
    }

    pub fn is_allowed(&self) -> bool {
        self.allowed.load(Ordering::Relaxed)
    }

    /// A token was looked up: someone should listen for its end. One load when one does.
    pub fn wanted(&self) {
        if self.running.load(Ordering::Relaxed) {
            return;
        }
        self.asked.store(true, Ordering::SeqCst);
        if self.allowed.load(Ordering::SeqCst) {
            self.start();
        }
    }

    fn start(&self) {
        let mut task = lock(&self.task);
        if task.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let span = tracing::info_span!(
            parent: None,
            "token_listener",
            tenant = %self.shared.tenant.get(),
            host = %self.shared.key,
        );
        *task = Some(tokio::spawn(
            supervise(self.shared.clone()).instrument(span),
        ));
        self.running.store(true, Ordering::Relaxed);
    }

    /// Ends the task and its session (the tenant's connections are being closed). Returns how
    /// many connections that closes, for the budget.
    pub fn stop(&self) -> usize {
        let Some(task) = lock(&self.task).take() else {
            return 0;
        };
        self.running.store(false, Ordering::Relaxed);
        let closing = usize::from(self.is_listening());
        // The session, its budget place and the `listening` mark go when the task is dropped;
        // the mark's end empties the cache.
        task.abort();
        if closing > 0 {
            tracing::info!(
                tenant = %self.shared.tenant.get(),
                host = %self.shared.key,
                "token listener closed with the tenant's connections"
            );
        }
        closing
    }

    /// Whether a task runs (listening, or trying to).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Whether a session is listening now.
    pub fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::Acquire) > 0
    }

    /// Sessions that have listened since the start.
    pub fn sessions(&self) -> u64 {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    pub fn figures(&self) -> ListenerFigures {
        let shared = &self.shared;
        ListenerFigures {
            listening: self.is_listening(),
            sessions: shared.sessions.load(Ordering::Relaxed),
            applied: shared.applied.load(Ordering::Relaxed),
            ignored: shared.ignored.load(Ordering::Relaxed),
            forgotten: shared.forgotten.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TokenListener {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Listens, and opens the session again whenever it is lost, until the task is aborted.
async fn supervise(shared: Arc<Shared>) {
    let mut backoff = MIN_BACKOFF;
    let mut failures: u32 = 0;
    loop {
        match listen(&shared).await {
            Ok(listened) => {
                failures = 0;
                if listened >= MAX_BACKOFF {
                    backoff = MIN_BACKOFF;
                }
                tracing::warn!(
                    listened_s = listened.as_secs(),
                    "token listener lost its session; remembered tokens were forgotten, and \
                     tokens ended elsewhere take up to TOKEN_CACHE_MS until it is back"
                );
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, "token listener cannot listen; trying again");
                } else {
                    tracing::debug!(%error, failures, "token listener still cannot listen");
                }
            }
        }
        // Jitter, so the instances of a restarted server do not all come back at once.
        let jitter = rand::random_range(0.75..1.25);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The `listening` mark of a session: gone when the session ends or its task is aborted, and
/// either way the cache is emptied, since what is ended from then on is not heard.
struct Listening<'a>(&'a Shared);

impl<'a> Listening<'a> {
    fn start(shared: &'a Shared) -> Listening<'a> {
        shared.listening.fetch_add(1, Ordering::AcqRel);
        shared.sessions.fetch_add(1, Ordering::Relaxed);
        Listening(shared)
    }
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.0.listening.fetch_sub(1, Ordering::AcqRel);
        self.0.cache.forget_all();
    }
}

/// One session: a place in the budget, the connection, `LISTEN`, then notifications until the
/// connection ends. Returns how long it listened.
async fn listen(shared: &Shared) -> Result<Duration, ListenError> {
    let connect_timeout = shared
        .pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(5));
    // Held as long as the session is open, like a pooled connection's.
    let _permit = tokio::time::timeout(connect_timeout, shared.budget.acquire(&shared.key))
        .await
        .map_err(|_| ListenError::Budget)?;
    let (client, _driver, mut notifications) = shared
        .connector
        .connect_listening(&shared.pg, QUEUE)
        .await?;
    match tokio::time::timeout(PING_TIMEOUT, client.batch_execute(LISTEN)).await {
        Ok(result) => result?,
        Err(_) => return Err(ListenError::Timeout),
    }
    // From here every end committed is heard. One committed before may not have been, and a
    // look-up may have remembered a token it ended: the mark empties the cache now and when
    // the session ends.
    let _listening = Listening::start(shared);
    shared.cache.forget_all();
    tracing::info!("token listener listening; tokens ended on other instances end here at once");
    let since = Instant::now();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING, PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = notifications.recv() => match received {
                Some(first) => apply(shared, first, &mut notifications),
                None => break,
            },
            _ = ping.tick() => {
                let answered = tokio::time::timeout(PING_TIMEOUT, client.batch_execute("SELECT 1")).await;
                if !matches!(answered, Ok(Ok(_))) {
                    break;
                }
            }
        }
    }
    Ok(since.elapsed())
}

/// Forgets what `first` and the notifications already waiting behind it name, in one pass.
fn apply(shared: &Shared, first: tokio_postgres::Notification, queue: &mut Notifications) {
    let mut tokens = Vec::new();
    let mut users = Vec::new();
    let mut ignored = 0u64;
    // The first ignored one's sender and size, for the log: never the payload itself, since any
    // login may write anything there.
    let mut sample = None;
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(notification) = next {
        taken += 1;
        match (notification.channel() == CHANNEL)
            .then(|| Ended::parse(notification.payload()))
            .flatten()
        {
            Some(Ended::Token(hash)) => tokens.push(hash),
            Some(Ended::User(id)) => users.push(id),
            None => {
                ignored += 1;
                sample.get_or_insert((notification.process_id(), notification.payload().len()));
            }
        }
        next = if taken < BATCH {
            queue.try_recv()
        } else {
            None
        };
    }
    if let Some((sender_pid, bytes)) = sample {
        // One line per batch, so a flood of garbage is not a flood of log lines.
        tracing::debug!(
            ignored,
            sender_pid,
            bytes,
            "ignored notifications that name no token or user"
        );
    }
    let forgotten = if queue.take_missed() {
        // Some were dropped unread: which tokens they named is unknown.
        tracing::warn!("token notifications came faster than they were read; cache emptied");
        let held = shared.cache.len();
        shared.cache.forget_all();
        held
    } else {
        shared.cache.forget_ended(&tokens, &users)
    };
    let applied = (tokens.len() + users.len()) as u64;
    shared.applied.fetch_add(applied, Ordering::Relaxed);
    shared.ignored.fetch_add(ignored, Ordering::Relaxed);
    shared
        .forgotten
        .fetch_add(forgotten as u64, Ordering::Relaxed);
    if forgotten > 0 {
        tracing::debug!(
            forgotten,
            notifications = applied,
            "forgot tokens ended elsewhere"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_token_hash_or_a_user_and_nothing_else_parses() {
        let hash = crate::auth::token_hash("ust_secret");
        let token = Ended::Token(hash).payload();
        assert_eq!(token.len(), 6 + 64);
        assert!(!token.contains("ust_secret"));
        assert_eq!(Ended::parse(&token), Some(Ended::Token(hash)));
        assert_eq!(Ended::User(42).payload(), "user:42");
        assert_eq!(Ended::parse("user:42"), Some(Ended::User(42)));
        assert_eq!(
            Ended::parse("user:9223372036854775807"),
            Some(Ended::User(i64::MAX))
        );
        for garbage in [
            "",
            "token:",
            "user:",
            "user:0",
            "user:-1",
            "user:+1",
            "user:01",
            "user: 1",
            "user:1 ",
            "user:1.5",
            "user:9223372036854775808",
            "user:99999999999999999999",
            "user:1; DROP TABLE public.tokens",
            "USER:1",
            "all",
            "*",
        ] {
            assert_eq!(Ended::parse(garbage), None, "{garbage:?}");
        }
        let upper = token.to_uppercase().replace("TOKEN:", "token:");
        assert_eq!(Ended::parse(&upper), None, "upper-case hex");
        assert_eq!(Ended::parse(&token[..token.len() - 1]), None);
        assert_eq!(Ended::parse(&format!("{token}0")), None);
        let mut not_hex = token.clone();
        not_hex.replace_range(6..7, "g");
        assert_eq!(Ended::parse(&not_hex), None);
        // Multi-byte characters where hex digits should be never panic.
        assert_eq!(Ended::parse(&format!("token:{}", "é".repeat(32))), None);
        assert_eq!(LISTEN, format!("LISTEN {CHANNEL}"));
    }
}
