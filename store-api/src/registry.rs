//! Which tenants this process serves, and the life of their pools.
//!
//! With `DATABASE_DSN`, one tenant answers to every host name. With `TENANTS_FILE` (router
//! mode), each host name of the file serves its tenant and any other gets 404 `unknown_tenant`.
//! Either way a tenant is one [`AppState`]: its own pool, token cache, sign-in counters and
//! figures, never shared with another, so a token or a throttle of one tenant means nothing to
//! the next.
//!
//! Pools connect on a tenant's first request. Every connection of the process counts against
//! one budget (`DB_MAX_CONNECTIONS`, see [`crate::budget`]); a tenant idle for
//! `DB_IDLE_TIMEOUT_SECS` has its connections closed, and when the budget runs out the least
//! recently used tenant's idle connections are closed first.
//!
//! [`Registry::reload`] (SIGHUP, or a change of the file) swaps in a new map: a tenant whose
//! entry did not change keeps its state; a removed or changed one leaves the map at once, and
//! its requests in flight finish on the state they hold, whose connections close when the last
//! of them ends. A file that cannot be read or parsed changes nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Uri};
use tracing::Instrument;

use crate::app::{AppState, Process, TenantSpec};
use crate::budget::Evict;
use crate::config::{Config, ConfigError, TENANTS_FILE};
use crate::db::PoolBuildError;
use crate::metrics::{BudgetFigures, Metrics, Series, TenantLabels};
use crate::tenant::TenantName;
use crate::tenants_file::{self, TenantEntry};
use crate::{hostname, metrics};

/// How long after a failed attempt a tenant's connection limit is asked again.
const LIMIT_RETRY: Duration = Duration::from_secs(5);

/// Why the registry could not be built or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    File(#[from] ConfigError),
    #[error(transparent)]
    Pool(#[from] PoolBuildError),
}

/// One tenant of a router: its state and what it was built from.
struct Listed {
    state: AppState,
    hosts: Vec<String>,
    /// Compared on reload; never logged.
    dsn: String,
}

#[derive(Default)]
struct Map {
    by_host: HashMap<String, AppState>,
    tenants: Vec<Listed>,
}

pub struct Registry {
    config: Config,
    process: Process,
    /// The tenant of a single-tenant process (`DATABASE_DSN`).
    single: Option<AppState>,
    /// The tenants of a router (`TENANTS_FILE`).
    map: RwLock<Arc<Map>>,
    /// Requests that named no tenant (unknown hosts, the operations port of a router).
    untenanted: Metrics,
    epoch: Instant,
}

impl Registry {
    /// The tenants `config` names, with no connection opened yet. Starts the task that closes
    /// idle pools.
    pub fn new(config: &Config) -> Result<Arc<Registry>, RegistryError> {
        let process = Process::new(config);
        let mut single = None;
        let mut map = Map::default();
        match (&config.database, &config.tenants) {
            (Some(database), _) => {
                let name = match &config.tenant_name {
                    Some(name) => TenantName::fixed(name),
                    None => TenantName::unknown(database.pg.get_dbname().unwrap_or("?")),
                };
                single = Some(AppState::for_tenant(
                    config,
                    &process,
                    TenantSpec {
                        key: "-",
                        name,
                        database,
                    },
                )?);
            }
            (None, Some(entries)) => map = build(config, &process, entries, &Map::default())?.0,
            (None, None) => {
                return Err(RegistryError::File(ConfigError::Missing {
                    name: crate::config::DATABASE_DSN,
                    hint: " (or TENANTS_FILE)",
                }));
            }
        }
        let registry = Arc::new(Registry {
            config: config.clone(),
            process,
            single,
            map: RwLock::new(Arc::new(map)),
            untenanted: Metrics::default(),
            epoch: Instant::now(),
        });
        let evict: Arc<dyn Evict> = registry.clone();
        registry.process.budget.set_evictor(Arc::downgrade(&evict));
        close_idle_pools(Arc::downgrade(&registry), config.db_idle_timeout);
        Ok(registry)
    }

    pub fn is_router(&self) -> bool {
        self.single.is_none()
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    pub fn separate_ops(&self) -> bool {
        self.config.ops_addr.is_some()
    }

    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// The tenant of a single-tenant process.
    pub fn single(&self) -> Option<AppState> {
        self.single.clone()
    }

    pub fn untenanted_metrics(&self) -> &Metrics {
        &self.untenanted
    }

    fn map(&self) -> Arc<Map> {
        match self.map.read() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Every tenant, in the order of the file (the single tenant alone otherwise).
    pub fn tenants(&self) -> Vec<(AppState, Vec<String>)> {
        match &self.single {
            Some(state) => vec![(state.clone(), Vec::new())],
            None => self
                .map()
                .tenants
                .iter()
                .map(|listed| (listed.state.clone(), listed.hosts.clone()))
                .collect(),
        }
    }

    /// The tenant a request is for: the single tenant whatever the host, or the router's tenant
    /// of the request's host name (`None`: no tenant is served there).
    pub fn resolve(&self, uri: &Uri, headers: &HeaderMap, peer: IpAddr) -> Option<AppState> {
        if let Some(state) = &self.single {
            return Some(state.clone());
        }
        let host = hostname::of_request(uri, headers, peer, &self.process.trusted_proxies)?;
        let map = match self.map.read() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.by_host.get(&host).cloned()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A request came for `state`: it is the most recently used tenant, and its pool is fitted
    /// to its database's connection limit if that has not been done yet.
    pub fn touch(&self, state: &AppState) {
        let now = self.now_ms();
        state.last_used_ms.store(now, Ordering::Relaxed);
        if state.limit_fitted.load(Ordering::Relaxed) {
            return;
        }
        let tried = state.limit_tried_ms.load(Ordering::Relaxed);
        if tried != 0 && now.saturating_sub(tried) < LIMIT_RETRY.as_millis() as u64 {
            return;
        }
        if state
            .limit_tried_ms
            .compare_exchange(tried, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let state = state.clone();
        // On the shared connection the request is about to open anyway: a connection of its
        // own would sit idle in the pool afterwards, one more per tenant in the budget.
        let span = tracing::info_span!("fit", tenant = %state.tenant.get(), host = %state.key);
        tokio::spawn(
            async move {
                if let Ok(client) = state.shared.get().await {
                    fit_pool_to_connection_limit(&state, &client).await;
                }
            }
            .instrument(span),
        );
    }

    /// Reads `TENANTS_FILE` again and serves what it says from now on. On any error the map
    /// in use stays, and the error (naming the problem, never a DSN) is returned.
    pub fn reload(&self) -> Result<(), RegistryError> {
        let Some(path) = &self.config.tenants_file else {
            return Ok(());
        };
        let entries = tenants_file::read(path, self.config.allow_cleartext_password)?;
        let old = self.map();
        let (map, reused) = build(&self.config, &self.process, &entries, &old)?;
        let mut added = 0;
        for listed in &map.tenants {
            if !old
                .tenants
                .iter()
                .any(|before| before.state.same(&listed.state))
            {
                added += 1;
                tracing::info!(tenant = %listed.state.tenant.get(), host = %listed.state.key, "tenant added");
            }
        }
        let mut removed = 0;
        for before in &old.tenants {
            if !map
                .tenants
                .iter()
                .any(|listed| before.state.same(&listed.state))
            {
                removed += 1;
                tracing::info!(
                    tenant = %before.state.tenant.get(),
                    host = %before.state.key,
                    "tenant removed or changed; its connections close when its last request ends"
                );
                // Idle ones now; those in use when they are given back.
                before.state.close_idle();
            }
        }
        let hosts = map.by_host.len();
        let tenants = map.tenants.len();
        match self.map.write() {
            Ok(mut current) => *current = Arc::new(map),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(map),
        }
        tracing::info!(
            tenants,
            hosts,
            added,
            removed,
            unchanged = reused,
            "TENANTS_FILE reloaded"
        );
        Ok(())
    }

    /// `/metrics`: the single tenant as it always was, or every tenant labelled by name and
    /// host plus the connection budget. `openmetrics`: the scraper asked for OpenMetrics.
    pub fn render_metrics(&self, openmetrics: bool) -> String {
        let stats = &self.process.stats;
        if let Some(state) = &self.single {
            let series = vec![Series {
                labels: None,
                metrics: state.metrics.clone(),
                pool: Some(state.pool.status()),
                listener: Some(state.listener.figures()),
            }];
            return metrics::render(Some(state.tenant.get()), series, stats, None, openmetrics);
        }
        let map = self.map();
        let mut series: Vec<Series> = map
            .tenants
            .iter()
            .map(|listed| Series {
                labels: Some(TenantLabels {
                    tenant: listed.state.tenant.get().clone(),
                    host: listed.state.key.clone(),
                }),
                metrics: listed.state.metrics.clone(),
                pool: Some(listed.state.pool.status()).filter(|status| status.size > 0),
                listener: Some(listed.state.listener.figures()),
            })
            .collect();
        series.push(Series {
            labels: Some(TenantLabels {
                tenant: Arc::from("-"),
                host: Arc::from("-"),
            }),
            metrics: self.untenanted.clone(),
            pool: None,
            listener: None,
        });
        let budget = BudgetFigures {
            max: self.process.budget.max(),
            in_use: self.process.budget.in_use(),
            tenants: map.tenants.len(),
            tenants_open: map
                .tenants
                .iter()
                .filter(|listed| listed.state.pool.status().size > 0)
                .count(),
            evicted: self.process.budget.evicted(),
        };
        metrics::render(None, series, stats, Some(budget), openmetrics)
    }
}

/// The map of `entries`, reusing the state of every tenant of `old` whose hosts' first name,
/// DSN and display name are unchanged. Also returns how many were reused.
fn build(
    config: &Config,
    process: &Process,
    entries: &[TenantEntry],
    old: &Map,
) -> Result<(Map, usize), RegistryError> {
    let mut map = Map::default();
    let mut reused = 0;
    for entry in entries {
        let key = &entry.hosts[0];
        let previous = old.tenants.iter().find(|listed| {
            &*listed.state.key == key
                && listed.dsn == entry.dsn
                && **listed.state.tenant.get() == *entry.name
        });
        let state = match previous {
            Some(listed) => {
                reused += 1;
                listed.state.clone()
            }
            None => AppState::for_tenant(
                config,
                process,
                TenantSpec {
                    key,
                    name: TenantName::fixed(&entry.name),
                    database: &entry.database,
                },
            )?,
        };
        for host in &entry.hosts {
            map.by_host.insert(host.clone(), state.clone());
        }
        map.tenants.push(Listed {
            state,
            hosts: entry.hosts.clone(),
            dsn: entry.dsn.clone(),
        });
    }
    Ok((map, reused))
}

impl Evict for Registry {
    /// Idle pooled connections first (a tenant's spare ones, which nobody is using); only when
    /// there are none, the unused shared connection of the least recently used tenant, which
    /// that tenant's next request will have to open again; then a token listener alone; last, a
    /// shared connection in use, let go so that it is closed as idle once its requests are done.
    fn evict_one(&self, except: &str) -> usize {
        let map = self.map();
        let others = || {
            map.tenants
                .iter()
                .map(|listed| &listed.state)
                .filter(|state| &*state.key != except)
        };
        let used = |state: &&AppState| state.last_used_ms.load(Ordering::Relaxed);
        // What a tenant holds that can go, in the order it is given up: (what, whether the
        // tenant holds it, closing it).
        type Tier = (&'static str, fn(&AppState) -> bool, fn(&AppState) -> usize);
        let tiers: [Tier; 4] = [
            (
                "idle",
                |s| s.pool.status().available > 0,
                |s| s.close_idle_pooled(),
            ),
            ("shared", |s| s.shared.holds_unused(), |s| s.close_idle()),
            // A token listener alone: its tenant falls back to the cache's second until its
            // next token look-up opens one again.
            (
                "token listener",
                |s| s.listener.is_listening(),
                |s| s.listener.stop(),
            ),
            (
                "shared, in use",
                |s| s.shared.holds_any(),
                |s| s.close_idle(),
            ),
        ];
        for (what, holds, close) in tiers {
            let Some(state) = others().filter(|s| holds(s)).min_by_key(used) else {
                continue;
            };
            let closed = close(state);
            tracing::debug!(
                tenant = %state.tenant.get(),
                host = %state.key,
                closed,
                what,
                for_host = except,
                "closed the least recently used tenant's connections for another tenant"
            );
            return closed;
        }
        0
    }
}

/// Every quarter of `idle` (at least each second), closes the connections of tenants that had
/// no request for `idle`, and the connections any pool has not used for that long.
fn close_idle_pools(registry: Weak<Registry>, idle: Duration) {
    let period = (idle / 4).max(Duration::from_secs(1));
    let idle_ms = idle.as_millis() as u64;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(registry) = registry.upgrade() else {
                return;
            };
            let now = registry.now_ms();
            for (state, _) in registry.tenants() {
                let last = state.last_used_ms.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= idle_ms {
                    if state.pool.status().size > 0 || state.listener.is_running() {
                        let closed = state.close_idle();
                        if closed > 0 {
                            tracing::debug!(
                                tenant = %state.tenant.get(),
                                closed,
                                "closed an idle tenant's connections"
                            );
                        }
                    }
                } else {
                    state.pool.retain(|_, metrics| metrics.last_used() < idle);
                }
            }
        }
    });
}

/// The tenant's plan is its database's connection limit (free: 5). A pool larger than that
/// would only turn busy moments into "too many connections" errors, so it shrinks to the limit,
/// less the one connection the token listener needs when it may run (tokens are remembered and
/// this login can read them: only then are there entries another instance could end).
pub async fn fit_pool_to_connection_limit(state: &AppState, client: &tokio_postgres::Client) {
    let (limit, reads_tokens) = match client
        .query_one(
            "SELECT d.datconnlimit, coalesce(pg_catalog.has_table_privilege(\
             pg_catalog.to_regclass('public.tokens'), 'SELECT'), false) \
             FROM pg_catalog.pg_database d \
             WHERE d.datname = pg_catalog.current_database()",
            &[],
        )
        .await
        .and_then(|row| Ok((row.try_get::<_, i32>(0)?, row.try_get::<_, bool>(1)?)))
    {
        Ok(answer) => answer,
        Err(error) => {
            tracing::debug!(%error, tenant = %state.tenant.get(), "cannot read the database's connection limit");
            return;
        }
    };
    state.limit_fitted.store(true, Ordering::Relaxed);
    let listens = reads_tokens && state.tokens.is_enabled() && limit != 1;
    let room = match usize::try_from(limit) {
        Ok(limit) if limit > 0 => Some(limit - usize::from(listens)),
        _ => None,
    };
    let size = state.pool.status().max_size;
    if let Some(room) = room
        && room < size
    {
        state.pool.resize(room);
        state.shared.fit();
        tracing::warn!(
            tenant = %state.tenant.get(),
            pool_size = size,
            connection_limit = limit,
            fitted = room,
            token_listener = listens,
            "DB_POOL_SIZE is above the database's connection limit (the tenant's plan); \
             using the limit (less one for the token listener)"
        );
    }
    state.listener.allow(listens);
}

/// The message of a refused reload, for the log.
pub fn describe_refusal(error: &RegistryError) -> String {
    match error {
        RegistryError::File(error) => error.to_string(),
        RegistryError::Pool(error) => format!("{TENANTS_FILE}: {error}"),
    }
}
