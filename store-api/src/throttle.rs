//! Throttling password guessing: failed sign-ins are counted per e-mail and per client address
//! in a sliding window; past the limit, sign-ins answer 429 `too_many_attempts` with
//! `Retry-After` until the oldest counted failure leaves the window.
//!
//! - The e-mail is counted whether or not it has an account, and the check comes before the
//!   database is asked: a throttled unknown e-mail looks exactly like a throttled known one.
//! - An attempt counts as a failure from the moment it starts; only a success (or an attempt
//!   that never reached the password check) takes it back. Concurrent guesses cannot slip past
//!   the limit, and an abandoned attempt still counts.
//! - A success forgets the e-mail's failures (a user who mistyped is not locked later), never the
//!   address's: one's own account cannot be used to reset an address's count.
//! - Memory is bounded: keys are 64-bit hashes (no e-mail is kept), at most `limit` instants per
//!   key, and at most [`MAX_KEYS`] keys per table; when a table is full of live entries, new
//!   keys are refused (429) rather than forgetting anybody's failures.
//! - IPv6 clients are counted per /64, the block one subscriber usually holds.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{SignInLimits, canonical};

/// Keys tracked per table (e-mails, addresses). Each failure costs an Argon2 computation, so at
/// the default limits no realistic attack fills this within a window.
pub const MAX_KEYS: usize = 100_000;

/// Why a sign-in may not be tried now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

struct Table {
    limit: usize,
    entries: HashMap<u64, VecDeque<Instant>>,
}

impl Table {
    fn new(limit: u32) -> Table {
        Table {
            limit: limit as usize,
            entries: HashMap::new(),
        }
    }

    /// How long until `key` may try again, counting failures since `since`; `None` when it may.
    fn blocked(
        &mut self,
        key: u64,
        since: Instant,
        window: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let failures = self.entries.get_mut(&key)?;
        while failures.front().is_some_and(|at| *at <= since) {
            failures.pop_front();
        }
        if failures.is_empty() {
            self.entries.remove(&key);
            return None;
        }
        if failures.len() < self.limit {
            return None;
        }
        let oldest = failures.front().copied()?;
        Some((oldest + window).saturating_duration_since(now))
    }

    fn has_room_for(&mut self, key: u64, since: Instant) -> bool {
        if self.entries.len() < MAX_KEYS || self.entries.contains_key(&key) {
            return true;
        }
        self.entries
            .retain(|_, failures| failures.back().is_some_and(|at| *at > since));
        self.entries.len() < MAX_KEYS
    }

    fn record(&mut self, key: u64, at: Instant) {
        let failures = self.entries.entry(key).or_default();
        failures.push_back(at);
        while failures.len() > self.limit {
            failures.pop_front();
        }
    }

    fn take_back(&mut self, key: u64, at: Instant) {
        if let Some(failures) = self.entries.get_mut(&key) {
            if let Some(index) = failures.iter().rposition(|t| *t == at) {
                failures.remove(index);
            }
            if failures.is_empty() {
                self.entries.remove(&key);
            }
        }
    }

    fn forget(&mut self, key: u64) {
        self.entries.remove(&key);
    }
}

struct Tables {
    emails: Table,
    addresses: Table,
}

pub struct Throttle {
    window: Duration,
    keys: RandomState,
    tables: Mutex<Tables>,
}

impl Throttle {
    pub fn new(limits: SignInLimits) -> Throttle {
        Throttle {
            window: limits.window,
            keys: RandomState::new(),
            tables: Mutex::new(Tables {
                emails: Table::new(limits.failures_per_email),
                addresses: Table::new(limits.failures_per_address),
            }),
        }
    }

    fn email_key(&self, email: &str) -> u64 {
        self.keys.hash_one(email.trim().to_lowercase())
    }

    fn address_key(&self, address: IpAddr) -> u64 {
        let bucket: u128 = match canonical(address) {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            // Tagged so no IPv6 prefix collides with an IPv4 address.
            IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
        };
        self.keys.hash_one(bucket)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        match self.tables.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts a sign-in attempt for `email` from `address`: counted as a failure until
    /// [`Attempt::succeeded`] or [`Attempt::not_tried`] says otherwise.
    pub fn begin(&self, email: &str, address: IpAddr) -> Result<Attempt<'_>, Throttled> {
        let now = Instant::now();
        let since = now.checked_sub(self.window).unwrap_or(now);
        let email = self.email_key(email);
        let address = self.address_key(address);
        let mut tables = self.lock();
        let wait = [
            tables.emails.blocked(email, since, self.window, now),
            tables.addresses.blocked(address, since, self.window, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(Throttled { retry_after: wait });
        }
        if !tables.emails.has_room_for(email, since)
            || !tables.addresses.has_room_for(address, since)
        {
            tracing::warn!("the sign-in throttle's tables are full; refusing new keys for now");
            return Err(Throttled {
                retry_after: Duration::from_secs(60),
            });
        }
        tables.emails.record(email, now);
        tables.addresses.record(address, now);
        Ok(Attempt {
            throttle: self,
            email,
            address,
            at: now,
            settled: false,
        })
    }
}

/// A sign-in attempt in progress. Dropped without a verdict, it stays counted as a failure.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    email: u64,
    address: u64,
    at: Instant,
    settled: bool,
}

impl Attempt<'_> {
    /// The password was right: the e-mail's failures are forgotten, this attempt is not a
    /// failure of the address.
    pub fn succeeded(mut self) {
        let mut tables = self.throttle.lock();
        tables.emails.forget(self.email);
        tables.addresses.take_back(self.address, self.at);
        self.settled = true;
    }

    /// The password was never checked (the database or the hashing slots were unavailable).
    pub fn not_tried(mut self) {
        let mut tables = self.throttle.lock();
        tables.emails.take_back(self.email, self.at);
        tables.addresses.take_back(self.address, self.at);
        self.settled = true;
    }

    /// The password was wrong (or the e-mail unknown): it stays counted.
    pub fn failed(mut self) {
        self.settled = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            tracing::debug!("a sign-in attempt ended without a verdict; counted as a failure");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_email: u32, per_address: u32) -> Throttle {
        Throttle::new(SignInLimits {
            failures_per_email: per_email,
            failures_per_address: per_address,
            window: Duration::from_secs(60),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn failures_per_email_then_429_until_the_window_moves() {
        let t = throttle(3, 100);
        for _ in 0..3 {
            t.begin("Ann@Example.com", ip("192.0.2.1"))
                .unwrap()
                .failed();
        }
        let blocked = t
            .begin(" ann@example.com ", ip("192.0.2.99"))
            .err()
            .unwrap();
        assert!(blocked.retry_after > Duration::from_secs(58), "{blocked:?}");
        assert!(t.begin("bob@example.com", ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn failures_per_address_whatever_the_email() {
        let t = throttle(100, 2);
        t.begin("a@x", ip("2001:db8::1")).unwrap().failed();
        t.begin("b@x", ip("2001:db8::2")).unwrap().failed();
        // The same /64.
        assert!(t.begin("c@x", ip("2001:db8::ffff")).is_err());
        assert!(t.begin("c@x", ip("2001:db8:0:1::1")).is_ok());
        // An IPv4-mapped address is the IPv4 address.
        t.begin("d@x", ip("198.51.100.7")).unwrap().failed();
        t.begin("e@x", ip("::ffff:198.51.100.7")).unwrap().failed();
        assert!(t.begin("f@x", ip("198.51.100.7")).is_err());
    }

    #[test]
    fn attempts_count_from_their_start_and_successes_are_taken_back() {
        let t = throttle(2, 3);
        let first = t.begin("a@x", ip("192.0.2.1")).unwrap();
        let second = t.begin("a@x", ip("192.0.2.1")).unwrap();
        // Two in flight: a third concurrent guess is refused before either finishes.
        assert!(t.begin("a@x", ip("192.0.2.1")).is_err());
        first.succeeded();
        second.not_tried();
        // The e-mail's count is clear; the address keeps nothing from a success either.
        for _ in 0..2 {
            t.begin("a@x", ip("192.0.2.1")).unwrap().failed();
        }
        assert!(t.begin("a@x", ip("192.0.2.1")).is_err());
        // An abandoned attempt counts.
        drop(t.begin("b@x", ip("192.0.2.1")).unwrap());
        assert!(t.begin("c@x", ip("192.0.2.1")).is_err());
    }
}
