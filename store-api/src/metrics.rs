//! Request counters and latency histograms for `GET /metrics`, kept in `prometheus-client`'s
//! metric types and encoded by that crate (OpenMetrics text, or Prometheus text 0.0.4 for a
//! scraper that does not ask for OpenMetrics).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelSetEncoder,
    LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::server::ConnectionStats;
use crate::token_listener::ListenerFigures;

/// Upper bounds of the latency buckets, in seconds (`+Inf` is added by the histogram).
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The Content-Type of the OpenMetrics text, for a scraper whose `Accept` names it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Content-Type of Prometheus text 0.0.4, for every other client.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One route and method: its responses by status and its latency histogram.
#[derive(Debug)]
struct RouteSeries {
    by_status: BTreeMap<u16, Counter>,
    duration: Histogram,
}

impl Default for RouteSeries {
    fn default() -> Self {
        RouteSeries {
            by_status: BTreeMap::new(),
            duration: Histogram::new(BUCKETS),
        }
    }
}

/// route → method → series; nested so a request's lookup borrows its `&str`s and allocates
/// nothing once its series exists.
type Routes = HashMap<Box<str>, HashMap<Box<str>, RouteSeries>>;

/// One tenant's request figures. A request takes the read lock for two hash look-ups and two
/// atomic updates; only a route, method or status seen for the first time takes the write lock.
/// Cloning shares the figures (the scrape holds a clone while it encodes).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    routes: Arc<RwLock<Routes>>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        {
            let routes = read(&self.routes);
            if let Some(series) = routes.get(route).and_then(|methods| methods.get(method))
                && let Some(counter) = series.by_status.get(&status)
            {
                counter.inc();
                series.duration.observe(seconds);
                return;
            }
        }
        let mut routes = match self.routes.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let series = routes
            .entry(route.into())
            .or_default()
            .entry(method.into())
            .or_default();
        series.by_status.entry(status).or_default().inc();
        series.duration.observe(seconds);
    }
}

fn read(routes: &RwLock<Routes>) -> std::sync::RwLockReadGuard<'_, Routes> {
    match routes.read() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What the process as a whole did: its listener's connections and its database budget.
#[derive(Default)]
pub struct ProcessStats {
    /// The API listener's connections.
    pub connections: Arc<ConnectionStats>,
    /// `MAX_CONNECTIONS` as applied.
    pub max_connections: AtomicU64,
}

/// The `tenant` and `host` labels of a tenant's series in router mode.
#[derive(Clone, Debug)]
pub struct TenantLabels {
    pub tenant: Arc<str>,
    pub host: Arc<str>,
}

/// One tenant's series: its labels (none for the one tenant of a single-tenant process, whose
/// series look as they always did), its figures and its pool's status, if open.
#[derive(Debug)]
pub struct Series {
    pub labels: Option<TenantLabels>,
    pub metrics: Metrics,
    pub pool: Option<deadpool_postgres::Status>,
    /// The tenant's token listener (see [`crate::token_listener`]); none for requests that
    /// named no tenant.
    pub listener: Option<ListenerFigures>,
}

/// The process's database connections across tenants (router mode).
#[derive(Debug)]
pub struct BudgetFigures {
    pub max: usize,
    pub in_use: usize,
    pub tenants: usize,
    pub tenants_open: usize,
    pub evicted: u64,
}

/// The listener's figures as read at the scrape.
#[derive(Debug)]
struct ConnectionFigures {
    open: i64,
    max: u64,
    accepted: u64,
    header_timeouts: u64,
    idle_timeouts: u64,
}

/// Everything one scrape encodes, gathered first so the encoder needs no borrow of the
/// registry (a `Collector` must be `'static`).
#[derive(Debug)]
struct Scrape {
    info_tenant: Option<String>,
    series: Vec<Series>,
    budget: Option<BudgetFigures>,
    connections: ConnectionFigures,
}

/// The metrics text of `series` (one per tenant), the process's connections and, in router
/// mode, the connection budget. `info_tenant` is the single tenant's name, if there is one.
/// `openmetrics`: whether the scraper asked for OpenMetrics (else Prometheus text 0.0.4).
pub fn render(
    info_tenant: Option<&str>,
    series: Vec<Series>,
    process: &ProcessStats,
    budget: Option<BudgetFigures>,
    openmetrics: bool,
) -> String {
    let connections = &process.connections;
    let scrape = Scrape {
        info_tenant: info_tenant.map(str::to_owned),
        series,
        budget,
        connections: ConnectionFigures {
            open: connections.open.load(Ordering::Relaxed),
            max: process.max_connections.load(Ordering::Relaxed),
            accepted: connections.accepted.load(Ordering::Relaxed),
            header_timeouts: connections.header_timeouts.load(Ordering::Relaxed),
            idle_timeouts: connections.idle_timeouts.load(Ordering::Relaxed),
        },
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail; an error could only come from our own encoders.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(%error, "encoding /metrics failed");
    }
    if openmetrics {
        out
    } else {
        openmetrics_to_text_004(&out)
    }
}

/// Whether an `Accept` header asks for OpenMetrics (Prometheus's scraper does, first).
/// OpenMetrics is chosen when the header accepts it (`q` above 0) at least as much as text
/// 0.0.4 (`text/plain`, `text/*` or `*/*`).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut openmetrics: Option<f32> = None;
    let mut text: Option<f32> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        // RFC 9110: a missing or unreadable weight is 1; "q=0" means "not acceptable".
        let q = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, value)| value.trim().parse::<f32>().ok())
            .filter(|q| q.is_finite())
            .unwrap_or(1.0);
        let best = match media.as_str() {
            "application/openmetrics-text" => &mut openmetrics,
            "text/plain" | "text/*" | "*/*" => &mut text,
            _ => continue,
        };
        *best = Some(best.map_or(q, |seen| seen.max(q)));
    }
    openmetrics.is_some_and(|open| open > 0.0 && open >= text.unwrap_or(0.0))
}

/// Hand-written because the crate only writes OpenMetrics: in text 0.0.4 a counter's `# HELP`
/// and `# TYPE` name its samples (`…_total`), not the family, and `# EOF` is not needed.
fn openmetrics_to_text_004(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then_some((prefix, name, tail))
        });
        match descriptor {
            Some((prefix, name, tail)) => {
                let _ = writeln!(out, "{prefix}{name}_total {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// A label value: text escaped as both formats require (hand-written because
/// `prometheus-client` writes label values verbatim, and tenant names come from the tenants'
/// own data), or a number such as a status.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Text(&'a str),
    Number(u16),
}

impl EncodeLabelValue for Value<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let text = match self {
            Value::Text(text) => text,
            Value::Number(number) => return number.encode(encoder),
        };
        for c in text.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                other => encoder.write_char(other)?,
            }
        }
        Ok(())
    }
}

/// Ordered `(name, value)` labels, written in this order.
struct Labels<'a>(Vec<(&'static str, Value<'a>)>);

impl<'a> Labels<'a> {
    /// A tenant's labels (none in single-tenant mode) followed by `more`.
    fn of(tenant: Option<&'a TenantLabels>, more: &[(&'static str, Value<'a>)]) -> Self {
        let mut labels = Vec::with_capacity(2 + more.len());
        if let Some(tenant) = tenant {
            labels.push(("tenant", Value::Text(&tenant.tenant)));
            labels.push(("host", Value::Text(&tenant.host)));
        }
        labels.extend_from_slice(more);
        Labels(labels)
    }
}

impl EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        for (name, value) in &self.0 {
            let mut label = encoder.encode_label();
            let mut key = label.encode_label_key()?;
            key.write_str(name)?;
            let mut value_encoder = key.encode_label_value()?;
            value.encode(&mut value_encoder)?;
            value_encoder.finish()?;
        }
        Ok(())
    }
}

/// The series of one family, each with its labels.
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric_encoder = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, metric) in series {
        if labels.0.is_empty() {
            // The crate writes `{}` for an empty label set; an unlabelled family (a
            // single-tenant pool) has this one series.
            return metric.encode(metric_encoder);
        }
        metric.encode(metric_encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled series.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: M,
) -> Result<(), std::fmt::Error> {
    let metric_type = metric.metric_type();
    metric.encode(encoder.encode_descriptor(name, help, None, metric_type)?)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let version = env!("CARGO_PKG_VERSION");
        let mut info = vec![("version", Value::Text(version))];
        if let Some(tenant) = &self.info_tenant {
            info.push(("tenant", Value::Text(tenant)));
        }
        family(
            &mut encoder,
            "store_api_info",
            "The running build and the tenant it serves.",
            MetricType::Gauge,
            [(Labels::of(None, &info), ConstGauge::new(1))],
        )?;

        let locked: Vec<_> = self
            .series
            .iter()
            .map(|series| (series, read(&series.metrics.routes)))
            .collect();
        // (tenant, method, route, series), each tenant's sorted by route then method.
        let mut routes: Vec<(Option<&TenantLabels>, &str, &str, &RouteSeries)> = Vec::new();
        for (series, by_route) in &locked {
            let start = routes.len();
            for (route, methods) in by_route.iter() {
                for (method, stats) in methods {
                    routes.push((series.labels.as_ref(), method, route, stats));
                }
            }
            routes[start..].sort_by(|a, b| (a.2, a.1).cmp(&(b.2, b.1)));
        }
        family(
            &mut encoder,
            "store_api_http_requests",
            "HTTP requests by method, route and status.",
            MetricType::Counter,
            routes.iter().flat_map(|(tenant, method, route, stats)| {
                stats.by_status.iter().map(move |(status, counter)| {
                    (
                        Labels::of(
                            *tenant,
                            &[
                                ("method", Value::Text(method)),
                                ("route", Value::Text(route)),
                                ("status", Value::Number(*status)),
                            ],
                        ),
                        counter.clone(),
                    )
                })
            }),
        )?;
        family(
            &mut encoder,
            "store_api_http_request_duration_seconds",
            "Time from request to response.",
            MetricType::Histogram,
            routes.iter().map(|(tenant, method, route, stats)| {
                (
                    Labels::of(
                        *tenant,
                        &[
                            ("method", Value::Text(method)),
                            ("route", Value::Text(route)),
                        ],
                    ),
                    stats.duration.clone(),
                )
            }),
        )?;
        drop(routes);
        drop(locked);

        let pools: Vec<(Option<&TenantLabels>, &deadpool_postgres::Status)> = self
            .series
            .iter()
            .filter_map(|series| Some((series.labels.as_ref(), series.pool.as_ref()?)))
            .collect();
        family(
            &mut encoder,
            "store_api_db_pool_max_connections",
            "Connections the pool may open.",
            MetricType::Gauge,
            pools.iter().map(|(tenant, status)| {
                (
                    Labels::of(*tenant, &[]),
                    ConstGauge::new(gauge(status.max_size)),
                )
            }),
        )?;
        family(
            &mut encoder,
            "store_api_db_pool_connections",
            "Open connections by state.",
            MetricType::Gauge,
            pools.iter().flat_map(|(tenant, status)| {
                let in_use = status.size.saturating_sub(status.available);
                [
                    (
                        Labels::of(*tenant, &[("state", Value::Text("idle"))]),
                        ConstGauge::new(gauge(status.available)),
                    ),
                    (
                        Labels::of(*tenant, &[("state", Value::Text("in_use"))]),
                        ConstGauge::new(gauge(in_use)),
                    ),
                ]
            }),
        )?;
        family(
            &mut encoder,
            "store_api_db_pool_waiting",
            "Requests waiting for a connection.",
            MetricType::Gauge,
            pools.iter().map(|(tenant, status)| {
                (
                    Labels::of(*tenant, &[]),
                    ConstGauge::new(gauge(status.waiting)),
                )
            }),
        )?;

        let listeners: Vec<(Option<&TenantLabels>, ListenerFigures)> = self
            .series
            .iter()
            .filter_map(|series| Some((series.labels.as_ref(), series.listener?)))
            .collect();
        family(
            &mut encoder,
            "store_api_token_listener_up",
            "Whether the tenant's token listener is listening: tokens ended on other instances \
             then end here at once, not within TOKEN_CACHE_MS.",
            MetricType::Gauge,
            listeners.iter().map(|(tenant, figures)| {
                (
                    Labels::of(*tenant, &[]),
                    ConstGauge::new(i64::from(figures.listening)),
                )
            }),
        )?;
        family(
            &mut encoder,
            "store_api_token_listener_sessions",
            "Sessions the token listener has listened on (more than one: it lost its session \
             and opened another).",
            MetricType::Counter,
            listeners.iter().map(|(tenant, figures)| {
                (
                    Labels::of(*tenant, &[]),
                    ConstCounter::new(figures.sessions),
                )
            }),
        )?;
        family(
            &mut encoder,
            "store_api_token_notifications",
            "Notifications of ended tokens heard: applied (named a token or user) or ignored \
             (named nothing this build understands).",
            MetricType::Counter,
            listeners.iter().flat_map(|(tenant, figures)| {
                [
                    (
                        Labels::of(*tenant, &[("outcome", Value::Text("applied"))]),
                        ConstCounter::new(figures.applied),
                    ),
                    (
                        Labels::of(*tenant, &[("outcome", Value::Text("ignored"))]),
                        ConstCounter::new(figures.ignored),
                    ),
                ]
            }),
        )?;
        family(
            &mut encoder,
            "store_api_token_cache_evictions",
            "Remembered tokens forgotten because a notification said they had ended.",
            MetricType::Counter,
            listeners.iter().map(|(tenant, figures)| {
                (
                    Labels::of(*tenant, &[]),
                    ConstCounter::new(figures.forgotten),
                )
            }),
        )?;

        if let Some(budget) = &self.budget {
            single(
                &mut encoder,
                "store_api_db_max_connections",
                "Database connections the process may hold across tenants (DB_MAX_CONNECTIONS).",
                ConstGauge::new(gauge(budget.max)),
            )?;
            single(
                &mut encoder,
                "store_api_db_connections",
                "Database connections open across tenants.",
                ConstGauge::new(gauge(budget.in_use)),
            )?;
            family(
                &mut encoder,
                "store_api_tenants",
                "Tenants served, and how many have a pool open.",
                MetricType::Gauge,
                [
                    (
                        Labels::of(None, &[("state", Value::Text("listed"))]),
                        ConstGauge::new(gauge(budget.tenants)),
                    ),
                    (
                        Labels::of(None, &[("state", Value::Text("open"))]),
                        ConstGauge::new(gauge(budget.tenants_open)),
                    ),
                ],
            )?;
            single(
                &mut encoder,
                "store_api_db_evictions",
                "Connections closed to make room in the budget for another tenant's.",
                ConstCounter::new(budget.evicted),
            )?;
        }

        let connections = &self.connections;
        single(
            &mut encoder,
            "store_api_http_connections_open",
            "Client connections open on the API's address.",
            ConstGauge::new(connections.open),
        )?;
        single(
            &mut encoder,
            "store_api_http_max_connections",
            "Client connections served at once (MAX_CONNECTIONS).",
            ConstGauge::new(gauge(connections.max)),
        )?;
        single(
            &mut encoder,
            "store_api_http_connections",
            "Client connections accepted.",
            ConstCounter::new(connections.accepted),
        )?;
        family(
            &mut encoder,
            "store_api_http_connection_timeouts",
            "Connections closed for taking too long: headers not sent in time (header_read) \
             or idle between requests (keep_alive).",
            MetricType::Counter,
            [
                (
                    Labels::of(None, &[("kind", Value::Text("header_read"))]),
                    ConstCounter::new(connections.header_timeouts),
                ),
                (
                    Labels::of(None, &[("kind", Value::Text("keep_alive"))]),
                    ConstCounter::new(connections.idle_timeouts),
                ),
            ],
        )
    }
}

/// A count as a gauge value (gauges are `i64`; no count here comes near `i64::MAX`).
fn gauge(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_one(tenant: &str, openmetrics: bool) -> String {
        let metrics = Metrics::default();
        metrics.record("GET", "/api/widgets/{id}", 200, Duration::from_millis(3));
        metrics.record("GET", "/api/widgets/{id}", 200, Duration::from_millis(700));
        metrics.record("GET", "/api/widgets/{id}", 404, Duration::from_millis(1));
        let series = vec![Series {
            labels: Some(TenantLabels {
                tenant: Arc::from(tenant),
                host: Arc::from("a.example"),
            }),
            metrics,
            pool: None,
            listener: Some(ListenerFigures {
                listening: true,
                sessions: 1,
                applied: 2,
                ignored: 1,
                forgotten: 3,
            }),
        }];
        render(None, series, &ProcessStats::default(), None, openmetrics)
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render_one("O\"Brien \\ Co\nLtd", false);
        assert!(
            text.contains(r#"tenant="O\"Brien \\ Co\nLtd",host="a.example""#),
            "{text}"
        );
    }

    #[test]
    fn counters_are_named_by_their_samples_in_text_004() {
        let text = render_one("A", false);
        assert!(
            text.contains("# TYPE store_api_http_requests_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP store_api_http_requests_total HTTP requests"));
        assert!(text.contains("# TYPE store_api_http_connection_timeouts_total counter\n"));
        assert!(text.contains(
            "store_api_http_requests_total{tenant=\"A\",host=\"a.example\",method=\"GET\",\
             route=\"/api/widgets/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "store_api_token_notifications_total{tenant=\"A\",host=\"a.example\",\
             outcome=\"ignored\"} 1\n"
        ));
        assert!(text.contains("store_api_token_listener_up{tenant=\"A\",host=\"a.example\"} 1\n"));
        assert!(text.contains("# TYPE store_api_token_cache_evictions_total counter\n"));
        assert!(!text.contains("# EOF"));
        // Each family is described once, before its samples.
        let types = text.lines().filter(|line| line.starts_with("# TYPE "));
        let mut names: Vec<_> = types.collect();
        let all = names.len();
        names.dedup();
        assert_eq!(names.len(), all);
    }

    #[test]
    fn openmetrics_names_families_and_ends_with_eof() {
        let text = render_one("A", true);
        assert!(
            text.contains("# TYPE store_api_http_requests counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        for bound in ["0.0005", "0.5", "+Inf"] {
            assert!(
                text.contains(&format!(
                    "store_api_http_request_duration_seconds_bucket{{le=\"{bound}\",tenant=\"A\""
                )),
                "{bound}: {text}"
            );
        }
        assert!(text.contains(
            "store_api_http_request_duration_seconds_count{tenant=\"A\",host=\"a.example\",\
             method=\"GET\",route=\"/api/widgets/{id}\"} 3\n"
        ));
    }

    #[test]
    fn openmetrics_is_asked_for_by_accept() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
        // What Prometheus 3 sends.
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        )));
        // Refused, or preferred less than text.
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0, text/plain"
        )));
        assert!(!wants_openmetrics(Some(
            "text/plain;q=0.9, Application/OpenMetrics-Text;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("application/openmetrics-textual")));
    }
}
