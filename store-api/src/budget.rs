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
    /// than close more than they need.
    incoming: AtomicUsize,
    /// Openers waiting for a permit: each needs one connection closed, so closes go on while
    /// fewer are incoming than openers wait.
    waiting: AtomicUsize,
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
            waiting: AtomicUsize::new(0),
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
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            self.arrived();
            return permit;
        }
        let waiting = Waiting::new(&self.waiting);
        loop {
            {
                // One opener at a time decides: two looking at once would both count the same
                // incoming permit as theirs.
                let _deciding = lock(&self.deciding);
                if self.incoming.load(Ordering::Relaxed) < self.waiting.load(Ordering::Relaxed) {
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
                    drop(waiting);
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

/// Counts an opener as waiting for as long as it lives (also when its request is abandoned).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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

    /// Releases a held permit when asked to evict, a millisecond later: a closed connection's
    /// permit comes back when its task has ended, not at once.
    struct Holder(Mutex<Vec<OwnedSemaphorePermit>>);

    impl Evict for Holder {
        fn evict_one(&self, except: &str) -> usize {
            assert!(except.starts_with('b'), "{except}");
            let Some(permit) = self.0.lock().unwrap().pop() else {
                return 0;
            };
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(permit);
            });
            1
        }
    }

    fn full_budget_of_idle_connections(max: usize) -> (Budget, Arc<Holder>) {
        let budget = Budget::new(max);
        let held = (0..max)
            .map(|_| budget.permits.clone().try_acquire_owned().unwrap())
            .collect();
        let holder = Arc::new(Holder(Mutex::new(held)));
        let weak: Weak<dyn Evict> = Arc::downgrade(&(holder.clone() as Arc<dyn Evict>));
        budget.set_evictor(weak);
        (budget, holder)
    }

    /// Several tenants opening at once while the budget is full of others' idle connections:
    /// each closes one for itself at once. (Waiting for one opener's close to serve them all
    /// made each of the others sit out a whole retry round, 50 ms a connection.)
    #[tokio::test(start_paused = true)]
    async fn openers_arriving_together_each_close_one_at_once() {
        let (budget, holder) = full_budget_of_idle_connections(4);
        let budget = Arc::new(budget);
        let started = tokio::time::Instant::now();
        let openers: Vec<_> = (0..4)
            .map(|n| {
                let budget = budget.clone();
                tokio::spawn(async move { budget.acquire(&format!("b{n}")).await })
            })
            .collect();
        let mut permits = Vec::new();
        for opener in openers {
            permits.push(opener.await.unwrap());
        }
        assert!(
            started.elapsed() < RETRY,
            "an opener waited a retry round: {:?}",
            started.elapsed()
        );
        assert!(holder.0.lock().unwrap().is_empty());
        assert_eq!(budget.in_use(), 4);
        assert_eq!(budget.evicted(), 4);
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
        tokio::task::yield_now().await;
        assert_eq!(budget.in_use(), 2);
        assert_eq!(holder.0.lock().unwrap().len(), 1);
        drop(b);
        assert_eq!(budget.in_use(), 1);
    }
}
