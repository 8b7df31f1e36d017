//! The router, its shared state and the middleware every request passes through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deadpool_postgres::Pool;
use tracing::Instrument;

use crate::auth::{Hasher, TokenCache};
use crate::budget::Budget;
use crate::config::{Config, DatabaseConfig, IpNet};
use crate::db::{self, PoolBuildError, SharedClients};
use crate::error::{ApiError, REQUEST, RequestContext, RequestId};
use crate::metrics::{Metrics, ProcessStats};
use crate::registry::Registry;
use crate::routes::{
    CachedCount, customers, operations, orders, reference, session, users, widgets,
};
use crate::tenant::TenantName;
use crate::throttle::Throttle;
use crate::token_listener::{ListenerSpec, TokenListener};

/// Largest request body accepted (413 above it). The biggest legitimate body, an order with
/// its customer and payment, is well under 2 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One tenant as every handler sees it. One reference count to clone: axum clones the state
/// several times per request, and ten counters bumped on both cores would cost more than the
/// handler.
///
/// The request middleware finds the tenant of the request ([`Registry::resolve`]) and puts its
/// state in the request's extensions; handlers take it as an extractor. A single-tenant
/// process is a registry of one tenant that answers to every host name.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`]: everything that belongs to one tenant (pool, caches, sign-in
/// counters, figures) and handles on what the process shares.
pub struct Shared {
    pub pool: Pool,
    /// Pool connections shared by many requests' single statements (see [`SharedClients`]).
    pub shared: Arc<SharedClients>,
    pub tenant: Arc<TenantName>,
    /// The tenant's key in the registry: its first host name (`-` in single-tenant mode).
    pub key: Arc<str>,
    pub metrics: Metrics,
    pub token_ttl: Duration,
    pub request_timeout: Duration,
    /// Process-wide: Argon2's memory is the process's, whichever tenant asks.
    pub hasher: Hasher,
    pub throttle: Throttle,
    pub tokens: Arc<TokenCache>,
    /// Hears tokens ended by other instances and forgets them from `tokens`.
    pub listener: TokenListener,
    pub trusted_proxies: Arc<[IpNet]>,
    /// The catalogue's `total`, counted at most once a second.
    pub catalogue_total: CachedCount,
    /// `/metrics` and `/readyz` are served on `OPS_ADDR`, not with the API.
    pub separate_ops: bool,
    /// When a request last came for this tenant (ms on the registry's clock), for closing idle
    /// pools and choosing which to close when the connection budget runs out.
    pub last_used_ms: AtomicU64,
    /// Whether the pool was fitted to the database's connection limit, and when that was last
    /// tried (ms), so a tenant whose database is down is not asked on every request.
    pub(crate) limit_fitted: AtomicBool,
    pub(crate) limit_tried_ms: AtomicU64,
}

impl Shared {
    /// Closes the tenant's idle connections (those in use close when given back) and its token
    /// listener. Its sign-in counters stay: closing connections must never reset a throttle.
    pub fn close_idle(&self) -> usize {
        self.shared.release();
        self.listener.stop() + self.close_idle_pooled()
    }

    /// Closes the connections waiting in the pool, keeping the shared ones.
    pub fn close_idle_pooled(&self) -> usize {
        self.pool.retain(|_, _| false).removed.len()
    }
}

/// A tenant removed from the map (or a stopped process) closes its connections as soon as the
/// last request holding it has ended.
impl Drop for Shared {
    fn drop(&mut self) {
        self.shared.release();
        self.listener.stop();
        self.pool.close();
        tracing::debug!(tenant = %self.tenant.get(), "tenant's connections closed");
    }
}

/// What a tenant's state is built from.
pub struct TenantSpec<'a> {
    pub key: &'a str,
    pub name: TenantName,
    pub database: &'a DatabaseConfig,
}

impl AppState {
    /// Builds the tenant's pool; connects nothing yet.
    pub fn for_tenant(
        config: &Config,
        process: &Process,
        spec: TenantSpec<'_>,
    ) -> Result<AppState, PoolBuildError> {
        let key: Arc<str> = Arc::from(spec.key);
        let pool = db::build_pool(
            spec.database,
            config.pool_size,
            config.request_timeout,
            process.budget.clone(),
            key.clone(),
            config.db_max_lifetime,
        )?;
        let tenant = Arc::new(spec.name);
        let tokens = Arc::new(TokenCache::new(config.token_cache));
        let listener = TokenListener::new(ListenerSpec {
            cache: tokens.clone(),
            pg: db::session_config(spec.database, config.request_timeout),
            connector: spec.database.connector.clone(),
            budget: process.budget.clone(),
            key: key.clone(),
            tenant: tenant.clone(),
        });
        Ok(AppState(Arc::new(Shared {
            shared: Arc::new(SharedClients::new(
                pool.clone(),
                config.shared_connections,
                config.db_max_lifetime,
            )),
            pool,
            tenant,
            key,
            metrics: Metrics::default(),
            token_ttl: config.token_ttl,
            request_timeout: config.request_timeout,
            hasher: process.hasher.clone(),
            throttle: Throttle::new(config.sign_in),
            tokens,
            listener,
            trusted_proxies: process.trusted_proxies.clone(),
            catalogue_total: CachedCount::new(Duration::from_secs(1)),
            separate_ops: config.ops_addr.is_some(),
            last_used_ms: AtomicU64::new(0),
            limit_fitted: AtomicBool::new(false),
            limit_tried_ms: AtomicU64::new(0),
        })))
    }
}

impl AppState {
    /// Whether both are the same tenant's state (not merely equal settings).
    pub fn same(&self, other: &AppState) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Handlers take the tenant's state from the request, where [`observe`] put it.
impl<S: Send + Sync> FromRequestParts<S> for AppState {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<AppState>().cloned().ok_or_else(|| {
            tracing::error!("a tenant's endpoint was reached without a tenant");
            ApiError::internal()
        })
    }
}

/// What every tenant of the process shares.
pub struct Process {
    pub hasher: Hasher,
    pub trusted_proxies: Arc<[IpNet]>,
    pub budget: Arc<Budget>,
    pub stats: ProcessStats,
}

impl Process {
    pub fn new(config: &Config) -> Process {
        Process {
            hasher: Hasher::new(config.hash_concurrency, config.hash_wait),
            trusted_proxies: config.trusted_proxies.clone().into(),
            budget: Arc::new(Budget::new(config.db_max_connections())),
            stats: ProcessStats::default(),
        }
    }
}

/// Every route, operations endpoints included unless they are served on their own address.
/// `/api/openapi.json` documents exactly these (a test holds them together).
pub fn router(registry: Arc<Registry>) -> Router {
    let mut routes = Router::new().route("/healthz", get(operations::healthz));
    if !registry.separate_ops() {
        routes = routes
            .route("/readyz", get(operations::readyz))
            .route("/metrics", get(operations::metrics));
    }
    routes
        .route("/api/openapi.json", get(operations::openapi))
        .route("/api/widgets", get(widgets::list).post(widgets::create))
        .route(
            "/api/widgets/{id}",
            get(widgets::get)
                .patch(widgets::update)
                .delete(widgets::delete),
        )
        .route(
            "/api/customers",
            get(customers::list).post(customers::create),
        )
        .route("/api/customers/{id}", get(customers::get))
        .route("/api/orders", get(orders::list).post(orders::place))
        .route("/api/orders/{id}", get(orders::get))
        .route("/api/orders/{id}/refund", post(orders::refund))
        .route("/api/orders/{id}/cancel", post(orders::cancel))
        .route("/api/statuses", get(reference::statuses))
        .route(
            "/api/transaction-statuses",
            get(reference::transaction_statuses),
        )
        .route("/api/authenticate", post(session::authenticate))
        .route("/api/logout", post(session::logout))
        .route("/api/users", get(users::list).post(users::create))
        .route(
            "/api/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .merge(crate::storefront::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            registry.clone(),
            observe_api,
        ))
        // Outermost, so the fallbacks', the timeout's and an unknown host's answers get it too.
        .layer(middleware::map_response(inert_in_a_browser))
        .with_state(registry)
}

/// What the API answers is data, never a page: a browser sent to it may not run, frame or
/// sniff it as another type. Storefront pages set their own, richer policy first; these only
/// fill in what a response lacks.
async fn inert_in_a_browser(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// The operations endpoints alone, for `OPS_ADDR`: liveness, readiness and metrics.
pub fn ops_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(operations::healthz))
        .route("/readyz", get(operations::readyz))
        .route("/metrics", get(operations::metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            registry.clone(),
            observe_ops,
        ))
        .with_state(registry)
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such endpoint; GET /api/openapi.json lists them",
    )
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; GET /api/openapi.json lists them",
    )
}

/// A request to the API's address serves the tenant its host names. Liveness answers on any
/// host (load balancers probe by address), naming no tenant.
async fn observe_api(
    State(registry): State<Arc<Registry>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let tenant = match registry.resolve(request.uri(), request.headers(), peer) {
        Some(tenant) => Ok(Some(tenant)),
        None if request.uri().path() == "/healthz" => Ok(None),
        None => Err(()),
    };
    observe(registry, tenant, request, next).await
}

/// The operations address serves the process: the one tenant of a single-tenant process, no
/// tenant in particular in router mode.
async fn observe_ops(
    State(registry): State<Arc<Registry>>,
    request: Request,
    next: Next,
) -> Response {
    let tenant = registry.single();
    observe(registry, Ok(tenant), request, next).await
}

/// No tenant of this process is served at the host a request named. The answer is the same
/// whatever the host was, and never names one.
fn unknown_tenant() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        "no shop is served at this address",
    )
}

/// Request id, timeout, span, metrics and the one log line per request. `state` is the
/// request's tenant, `Ok(None)` for the process's own endpoints, `Err` for a host this process
/// does not serve.
async fn observe(
    registry: Arc<Registry>,
    state: Result<Option<AppState>, ()>,
    mut request: Request,
    next: Next,
) -> Response {
    let known = state.is_ok();
    let state = state.ok().flatten();
    let started = Instant::now();
    let client_id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| RequestId::from_client(value.as_bytes()).is_some())
        .cloned();
    let request_id = match &client_id {
        Some(value) => RequestId::from_client(value.as_bytes()).unwrap_or_else(RequestId::random),
        None => RequestId::random(),
    };
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("-", MatchedPath::as_str);
    let tenant = state.as_ref().map(|state| state.tenant.get().clone());
    let shown: &str = tenant.as_deref().unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        tenant = shown,
        request_id = %request_id,
        method = %method,
        route,
        host = tracing::field::Empty,
    );
    if registry.is_router()
        && let Some(state) = &state
    {
        span.record("host", &*state.key);
    }
    // The path, not the URI: query strings carry search terms, which are personal data. The
    // URI is shared with the request, not copied.
    let uri = request.uri().clone();
    let timeout = registry.request_timeout();
    let context = RequestContext {
        request_id,
        tenant,
        deadline: started + timeout,
    };
    if let Some(state) = &state {
        registry.touch(state);
        request.extensions_mut().insert(state.clone());
    }
    let mut response = REQUEST
        .scope(context, async move {
            if !known {
                return unknown_tenant().into_response();
            }
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
                    ApiError::unavailable(
                        "timeout",
                        "the request took too long and was abandoned; try again",
                    )
                    .into_response()
                }
            }
        })
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let status = response.status();
    let metric_route = if route == "-" { "unmatched" } else { route };
    let metrics = match &state {
        Some(state) => &state.metrics,
        None => registry.untenanted_metrics(),
    };
    metrics.record(method.as_str(), metric_route, status.as_u16(), elapsed);
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    let path = uri.path();
    if status.is_server_error() {
        tracing::warn!(parent: &span, status = status.as_u16(), elapsed_ms, path, "request failed");
    } else {
        tracing::info!(parent: &span, status = status.as_u16(), elapsed_ms, path, "request");
    }
    let header = match client_id {
        Some(value) => Some(value),
        None => HeaderValue::from_str(request_id.as_str()).ok(),
    };
    if let Some(value) = header {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
