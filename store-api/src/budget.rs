//! The process's database connections as one budget (`DB_MAX_CONNECTIONS`) shared by every
//! tenant's pool.
//!
//! A connection takes a permit before it is opened and gives it back when it closes, however it
//! closes (dropped by its pool, or ended by the server): the permit lives in the task that
//! drives the connection. When none is free, idle connections of the least recently used other
//! tenant are closed ([`Evict`]) and the opener waits for a permit; deadpool's create timeout
//! bounds that wait, so a tenant that finds every connection busy gets a 503 rather than
//! waiting for ever, and no tenant can take more than its own pool's size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Closes idle connections to make room in the budget.
pub trait Evict: Send + Sync {
    /// Closes the idle connections of the least recently used tenant other than `except` (a
    /// tenant key); returns how many it closed (0: nothing was idle).
    fn evict_one(&self, except: &str) -> usize;
}

/// How often a waiting opener looks again for idle connections to close: others' connections
/// become idle while it waits, without freeing a permit by themselves.
const RETRY: Duration = Duration::from_millis(50);

pub struct Budget {
    permits: Arc<Semaphore>,
    max: usize,
    evict: OnceLock<Weak<dyn Evict>>,
    /// Permits that closed connections are about to give back: openers wait for those rather
    /// than close more (several waiting at once would otherwise each close another tenant's).
    incoming: AtomicUsize,
    deciding: std::sync::Mutex<()>,
    /// Connections closed to make room for another tenant's, since the start.
    evicted: std::sync::atomic::AtomicU64,
    /// When the last "budget exhausted" warning was logged (at most one a minute).
    warned: std::sync::Mutex<Option<Instant>>,
}

impl Budget {
    pub fn new(max: usize) -> Budget {
        Budget {
            permits: Arc::new(Semaphore::new(max)),
            max,
            evict: OnceLock::new(),
            incoming: AtomicUsize::new(0),
            deciding: std::sync::Mutex::new(()),
            evicted: std::sync::atomic::AtomicU64::new(0),
            warned: std::sync::Mutex::new(None),
        }
    }

    /// Who closes idle connections when the budget runs out (the tenant registry).
    pub fn set_evictor(&self, evict: Weak<dyn Evict>) {
        let _ = self.evict.set(evict);
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections closed so far to make room for another tenant's.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Connections open (or being opened) now, across every tenant.
    pub fn in_use(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }

    /// A permit for one new connection of `tenant`, closing other tenants' idle connections if
    /// need be. Waits until one is free; the caller bounds the wait.
    pub async fn acquire(&self, tenant: &str) -> OwnedSemaphorePermit {
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                self.arrived();
                return permit;
            }
            {
                // One opener at a time decides: two looking at once would both see nothing
                // incoming and each close a tenant.
                let _deciding = lock(&self.deciding);
                if self.incoming.load(Ordering::Relaxed) == 0 {
                    let closed = self
                        .evict
                        .get()
                        .and_then(Weak::upgrade)
                        .map_or(0, |evict| evict.evict_one(tenant));
                    if closed == 0 {
                        self.warn_exhausted(tenant);
                    }
                    self.evicted.fetch_add(closed as u64, Ordering::Relaxed);
                    self.incoming.fetch_add(closed, Ordering::Relaxed);
                }
            }
            // A closed connection's permit comes back when its task has been dropped, soon
            // after the eviction; otherwise whoever closes first.
            match tokio::time::timeout(RETRY, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => {
                    self.arrived();
                    return permit;
                }
                // What was expected did not come (taken by another opener, or never closed):
                // the next round looks for idle connections again.
                _ => self.incoming.store(0, Ordering::Relaxed),
            }
        }
    }

    /// One of the expected permits was taken.
    fn arrived(&self) {
        let _ = self
            .incoming
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    fn warn_exhausted(&self, tenant: &str) {
        let mut warned = lock(&self.warned);
        if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            *warned = Some(Instant::now());
            tracing::warn!(
                tenant,
                db_max_connections = self.max,
                "every database connection of the budget is in use; \
                 the tenant waits for one (raise DB_MAX_CONNECTIONS or lower DB_POOL_SIZE)"
            );
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Releases a held permit when asked to evict.
    struct Holder(Mutex<Vec<OwnedSemaphorePermit>>);

    impl Evict for Holder {
        fn evict_one(&self, except: &str) -> usize {
            assert_eq!(except, "b");
            self.0.lock().unwrap().pop().map_or(0, |_| 1)
        }
    }

    #[tokio::test]
    async fn a_full_budget_closes_idle_connections_of_others() {
        let budget = Budget::new(2);
        let a1 = budget.acquire("a").await;
        let a2 = budget.acquire("a").await;
        assert_eq!(budget.in_use(), 2);
        let holder: Arc<Holder> = Arc::new(Holder(Mutex::new(vec![a1, a2])));
        let weak: Weak<dyn Evict> = Arc::downgrade(&(holder.clone() as Arc<dyn Evict>));
        budget.set_evictor(weak);
        let b = tokio::time::timeout(Duration::from_secs(2), budget.acquire("b"))
            .await
            .expect("a permit after eviction");
        assert_eq!(budget.in_use(), 2);
        assert_eq!(holder.0.lock().unwrap().len(), 1);
        drop(b);
        assert_eq!(budget.in_use(), 1);
    }
}
