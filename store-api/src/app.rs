//! The router, its shared state and the middleware every request passes through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deadpool_postgres::Pool;
use tracing::Instrument;

use crate::auth::{Hasher, TokenCache};
use crate::config::{Config, IpNet};
use crate::db::{self, PoolBuildError, SharedClients};
use crate::error::{ApiError, REQUEST, RequestContext, RequestId};
use crate::metrics::Metrics;
use crate::routes::{
    CachedCount, customers, operations, orders, reference, session, users, widgets,
};
use crate::tenant::TenantName;
use crate::throttle::Throttle;

/// Largest request body accepted (413 above it). The biggest legitimate body, an order with
/// its customer and payment, is well under 2 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach. One reference count to clone: axum clones the state several
/// times per request, and ten counters bumped on both cores would cost more than the handler.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    pub pool: Pool,
    /// Pool connections shared by many requests' single statements (see [`SharedClients`]).
    pub shared: Arc<SharedClients>,
    pub tenant: Arc<TenantName>,
    pub metrics: Arc<Metrics>,
    pub token_ttl: Duration,
    pub request_timeout: Duration,
    pub hasher: Hasher,
    pub throttle: Arc<Throttle>,
    pub tokens: Arc<TokenCache>,
    pub trusted_proxies: Arc<[IpNet]>,
    /// The catalogue's `total`, counted at most once a second.
    pub catalogue_total: Arc<CachedCount>,
    /// `/metrics` and `/readyz` are served on `OPS_ADDR`, not with the API.
    pub separate_ops: bool,
}

impl AppState {
    /// Builds the pool; connects nothing yet.
    pub fn new(config: &Config) -> Result<AppState, PoolBuildError> {
        let pool = db::build_pool(&config.database, config.pool_size, config.request_timeout)?;
        let tenant = match &config.tenant_name {
            Some(name) => TenantName::fixed(name),
            None => TenantName::unknown(config.database.pg.get_dbname().unwrap_or("?")),
        };
        Ok(AppState(Arc::new(Shared {
            shared: Arc::new(SharedClients::new(pool.clone(), config.shared_connections)),
            pool,
            tenant: Arc::new(tenant),
            metrics: Arc::new(Metrics::default()),
            token_ttl: config.token_ttl,
            request_timeout: config.request_timeout,
            hasher: Hasher::new(config.hash_concurrency, config.hash_wait),
            throttle: Arc::new(Throttle::new(config.sign_in)),
            tokens: Arc::new(TokenCache::new(config.token_cache)),
            trusted_proxies: config.trusted_proxies.clone().into(),
            catalogue_total: Arc::new(CachedCount::new(Duration::from_secs(1))),
            separate_ops: config.ops_addr.is_some(),
        })))
    }
}

/// Every route, operations endpoints included unless they are served on their own address.
/// `/api/openapi.json` documents exactly these (a test holds them together).
pub fn router(state: AppState) -> Router {
    let mut routes = Router::new().route("/healthz", get(operations::healthz));
    if !state.separate_ops {
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
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The operations endpoints alone, for `OPS_ADDR`: liveness, readiness and metrics.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(operations::healthz))
        .route("/readyz", get(operations::readyz))
        .route("/metrics", get(operations::metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
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

/// Request id, timeout, span, metrics and the one log line per request.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
    let tenant = state.tenant.get().clone();
    let span = tracing::info_span!(
        "request",
        tenant = %tenant,
        request_id = %request_id,
        method = %method,
        route,
    );
    // The path, not the URI: query strings carry search terms, which are personal data. The
    // URI is shared with the request, not copied.
    let uri = request.uri().clone();
    let timeout = state.request_timeout;
    let context = RequestContext {
        request_id,
        tenant,
        deadline: started + timeout,
    };
    let mut response = REQUEST
        .scope(context, async move {
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
    state
        .metrics
        .record(method.as_str(), metric_route, status.as_u16(), elapsed);
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
