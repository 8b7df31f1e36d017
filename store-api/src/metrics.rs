//! Request counters and latency histograms, rendered as Prometheus text for `GET /metrics`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;

use crate::server::ConnectionStats;
use crate::token_listener::ListenerFigures;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

/// One tenant's request figures; a mutex held for a few hash-map operations per request costs
/// far less than the request itself.
#[derive(Default)]
pub struct Metrics {
    /// route → method → stats; nested so a lookup needs no allocation.
    routes: Mutex<HashMap<String, HashMap<String, RouteStats>>>,
}

/// What the process as a whole did: its listener's connections and its database budget.
#[derive(Default)]
pub struct ProcessStats {
    /// The API listener's connections.
    pub connections: Arc<ConnectionStats>,
    /// `MAX_CONNECTIONS` as applied.
    pub max_connections: AtomicU64,
}

/// One tenant's series: its labels (empty for the one tenant of a single-tenant process, whose
/// series look as they always did), its figures and its pool, if open.
pub struct Series<'a> {
    pub labels: String,
    pub metrics: &'a Metrics,
    pub pool: Option<&'a Pool>,
    /// The tenant's token listener (see [`crate::token_listener`]); none for requests that
    /// named no tenant.
    pub listener: Option<ListenerFigures>,
}

impl Series<'_> {
    /// `tenant="…",host="…",`: the label prefix of a tenant's series in router mode.
    pub fn labels_of(tenant: &str, host: &str) -> String {
        format!("tenant=\"{}\",host=\"{}\",", escape(tenant), escape(host))
    }
}

/// The process's database connections across tenants (router mode).
pub struct BudgetFigures {
    pub max: usize,
    pub in_use: usize,
    pub tenants: usize,
    pub tenants_open: usize,
    pub evicted: u64,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        let mut routes = match self.routes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), HashMap::new());
        }
        let Some(methods) = routes.get_mut(route) else {
            return;
        };
        if !methods.contains_key(method) {
            methods.insert(method.to_owned(), RouteStats::default());
        }
        let Some(stats) = methods.get_mut(method) else {
            return;
        };
        *stats.by_status.entry(status).or_default() += 1;
        stats.buckets[bucket] += 1;
        stats.sum_seconds += seconds;
        stats.count += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, RouteStats>>> {
        match self.routes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The Prometheus text of `series` (one per tenant), the process's connections and, in router
/// mode, the connection budget. `info_tenant` is the single tenant's name, if there is one.
pub fn render(
    info_tenant: Option<&str>,
    series: &[Series<'_>],
    process: &ProcessStats,
    budget: Option<BudgetFigures>,
) -> String {
    let mut out = String::with_capacity(4096);
    let tenant_label = match info_tenant {
        Some(tenant) => format!(",tenant=\"{}\"", escape(tenant)),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "# HELP store_api_info The running build and the tenant it serves.\n\
         # TYPE store_api_info gauge\n\
         store_api_info{{version=\"{}\"{tenant_label}}} 1",
        escape(env!("CARGO_PKG_VERSION")),
    );

    let locked: Vec<_> = series.iter().map(|s| (s, s.metrics.lock())).collect();
    let mut keys: Vec<(&str, &str, &str, &RouteStats)> = Vec::new();
    for (s, routes) in &locked {
        let mut own: Vec<(&str, &str, &str, &RouteStats)> = routes
            .iter()
            .flat_map(|(route, methods)| {
                methods.iter().map(move |(method, stats)| {
                    (s.labels.as_str(), method.as_str(), route.as_str(), stats)
                })
            })
            .collect();
        own.sort_by(|a, b| (a.2, a.1).cmp(&(b.2, b.1)));
        keys.extend(own);
    }

    out.push_str(
        "# HELP store_api_http_requests_total HTTP requests by method, route and status.\n\
         # TYPE store_api_http_requests_total counter\n",
    );
    for (prefix, method, route, stats) in &keys {
        for (status, count) in &stats.by_status {
            let _ = writeln!(
                out,
                "store_api_http_requests_total{{{prefix}method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
    }

    out.push_str(
        "# HELP store_api_http_request_duration_seconds Time from request to response.\n\
         # TYPE store_api_http_request_duration_seconds histogram\n",
    );
    for (prefix, method, route, stats) in &keys {
        let labels = format!(
            "{prefix}method=\"{}\",route=\"{}\"",
            escape(method),
            escape(route)
        );
        let mut cumulative = 0;
        for (index, bound) in BUCKETS.iter().enumerate() {
            cumulative += stats.buckets[index];
            let _ = writeln!(
                out,
                "store_api_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "store_api_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             store_api_http_request_duration_seconds_sum{{{labels}}} {}\n\
             store_api_http_request_duration_seconds_count{{{labels}}} {}",
            stats.count, stats.sum_seconds, stats.count
        );
    }
    drop(keys);
    drop(locked);

    let pools: Vec<(&str, deadpool_postgres::Status)> = series
        .iter()
        .filter_map(|s| {
            s.pool
                .map(|pool| (s.labels.trim_end_matches(','), pool.status()))
        })
        .collect();
    let braces = |labels: &str| {
        if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        }
    };
    let comma = |labels: &str| {
        if labels.is_empty() {
            String::new()
        } else {
            format!("{labels},")
        }
    };
    out.push_str(
        "# HELP store_api_db_pool_max_connections Connections the pool may open.\n\
         # TYPE store_api_db_pool_max_connections gauge\n",
    );
    for (labels, status) in &pools {
        let _ = writeln!(
            out,
            "store_api_db_pool_max_connections{} {}",
            braces(labels),
            status.max_size
        );
    }
    out.push_str(
        "# HELP store_api_db_pool_connections Open connections by state.\n\
         # TYPE store_api_db_pool_connections gauge\n",
    );
    for (labels, status) in &pools {
        let in_use = status.size.saturating_sub(status.available);
        let _ = writeln!(
            out,
            "store_api_db_pool_connections{{{}state=\"idle\"}} {}\n\
             store_api_db_pool_connections{{{}state=\"in_use\"}} {in_use}",
            comma(labels),
            status.available,
            comma(labels),
        );
    }
    out.push_str(
        "# HELP store_api_db_pool_waiting Requests waiting for a connection.\n\
         # TYPE store_api_db_pool_waiting gauge\n",
    );
    for (labels, status) in &pools {
        let _ = writeln!(
            out,
            "store_api_db_pool_waiting{} {}",
            braces(labels),
            status.waiting
        );
    }
    let listeners: Vec<(&str, ListenerFigures)> = series
        .iter()
        .filter_map(|s| s.listener.map(|figures| (s.labels.as_str(), figures)))
        .collect();
    out.push_str(
        "# HELP store_api_token_listener_up Whether the tenant's token listener is listening: \
         tokens ended on other instances then end here at once, not within TOKEN_CACHE_MS.\n\
         # TYPE store_api_token_listener_up gauge\n",
    );
    for (labels, figures) in &listeners {
        let _ = writeln!(
            out,
            "store_api_token_listener_up{} {}",
            braces(labels.trim_end_matches(',')),
            u8::from(figures.listening)
        );
    }
    out.push_str(
        "# HELP store_api_token_listener_sessions_total Sessions the token listener has listened on \
         (more than one: it lost its session and opened another).\n\
         # TYPE store_api_token_listener_sessions_total counter\n",
    );
    for (labels, figures) in &listeners {
        let _ = writeln!(
            out,
            "store_api_token_listener_sessions_total{} {}",
            braces(labels.trim_end_matches(',')),
            figures.sessions
        );
    }
    out.push_str(
        "# HELP store_api_token_notifications_total Notifications of ended tokens heard: applied \
         (named a token or user) or ignored (named nothing this build understands).\n\
         # TYPE store_api_token_notifications_total counter\n",
    );
    for (labels, figures) in &listeners {
        let _ = writeln!(
            out,
            "store_api_token_notifications_total{{{labels}outcome=\"applied\"}} {}\n\
             store_api_token_notifications_total{{{labels}outcome=\"ignored\"}} {}",
            figures.applied, figures.ignored
        );
    }
    out.push_str(
        "# HELP store_api_token_cache_evictions_total Remembered tokens forgotten because a \
         notification said they had ended.\n\
         # TYPE store_api_token_cache_evictions_total counter\n",
    );
    for (labels, figures) in &listeners {
        let _ = writeln!(
            out,
            "store_api_token_cache_evictions_total{} {}",
            braces(labels.trim_end_matches(',')),
            figures.forgotten
        );
    }
    if let Some(budget) = budget {
        let _ = write!(
            out,
            "# HELP store_api_db_max_connections Database connections the process may hold across tenants (DB_MAX_CONNECTIONS).\n\
             # TYPE store_api_db_max_connections gauge\n\
             store_api_db_max_connections {}\n\
             # HELP store_api_db_connections Database connections open across tenants.\n\
             # TYPE store_api_db_connections gauge\n\
             store_api_db_connections {}\n\
             # HELP store_api_tenants Tenants served, and how many have a pool open.\n\
             # TYPE store_api_tenants gauge\n\
             store_api_tenants{{state=\"listed\"}} {}\n\
             store_api_tenants{{state=\"open\"}} {}\n\
             # HELP store_api_db_evictions_total Connections closed to make room in the budget for another tenant's.\n\
             # TYPE store_api_db_evictions_total counter\n\
             store_api_db_evictions_total {}\n",
            budget.max, budget.in_use, budget.tenants, budget.tenants_open, budget.evicted
        );
    }
    let connections = &process.connections;
    let _ = write!(
        out,
        "# HELP store_api_http_connections_open Client connections open on the API's address.\n\
         # TYPE store_api_http_connections_open gauge\n\
         store_api_http_connections_open {}\n\
         # HELP store_api_http_max_connections Client connections served at once (MAX_CONNECTIONS).\n\
         # TYPE store_api_http_max_connections gauge\n\
         store_api_http_max_connections {}\n\
         # HELP store_api_http_connections_total Client connections accepted.\n\
         # TYPE store_api_http_connections_total counter\n\
         store_api_http_connections_total {}\n\
         # HELP store_api_http_connection_timeouts_total Connections closed for taking too long: \
         headers not sent in time (header_read) or idle between requests (keep_alive).\n\
         # TYPE store_api_http_connection_timeouts_total counter\n\
         store_api_http_connection_timeouts_total{{kind=\"header_read\"}} {}\n\
         store_api_http_connection_timeouts_total{{kind=\"keep_alive\"}} {}\n",
        connections.open.load(Ordering::Relaxed),
        process.max_connections.load(Ordering::Relaxed),
        connections.accepted.load(Ordering::Relaxed),
        connections.header_timeouts.load(Ordering::Relaxed),
        connections.idle_timeouts.load(Ordering::Relaxed),
    );
    out
}

/// Label values: backslash, double quote and newline are escaped (Prometheus text format).
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"O"Brien \ Co"#), r#"O\"Brien \\ Co"#);
        assert_eq!(escape("a\nb"), "a\\nb");
    }
}
