//! For orchestrators and operators: liveness, readiness, metrics and the API description.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::routes::Json;

/// The schema version whose tables this build reads and writes. Raise it when code starts to
/// depend on a newer migration.
pub const NEEDED_SCHEMA_VERSION: i32 = 2;

/// Readiness answers quickly even when the database hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up: no database involved. Where no tenant is meant (a router's operations
/// port, or a host it does not serve) it says nothing more, not even how many tenants there are.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "OK", body = Health)),
)]
pub async fn healthz(tenant: Option<Extension<AppState>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        tenant: tenant.map(|Extension(state)| state.tenant.get().to_string()),
    })
}

/// `/healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// The tenant served; absent where no tenant is meant (a router's operations port).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub tenant: Option<String>,
}

/// One tenant's readiness: whether its database answers and its schema is new enough.
enum Readiness {
    Ready(i32),
    SchemaOutdated(i32),
    Unavailable(String),
}

impl Readiness {
    async fn of(state: &AppState) -> Readiness {
        let check = async {
            let client = state.pool.get().await.map_err(ApiError::from)?;
            usualstore_schema::applied_version(&client)
                .await
                .map_err(|error| match error {
                    usualstore_schema::SchemaError::Database(error) => ApiError::from(error),
                    other => {
                        tracing::warn!(error = %other, tenant = %state.tenant.get(), "reading the schema version failed");
                        ApiError::internal()
                    }
                })
        };
        match tokio::time::timeout(READY_TIMEOUT, check).await {
            Ok(Ok(version)) if version >= NEEDED_SCHEMA_VERSION => Readiness::Ready(version),
            Ok(Ok(version)) => Readiness::SchemaOutdated(version),
            Ok(Err(error)) => Readiness::Unavailable(error.message),
            Err(_) => {
                Readiness::Unavailable("the database did not answer within 2 seconds".to_owned())
            }
        }
    }

    fn status(&self) -> ReadyStatus {
        match self {
            Readiness::Ready(_) => ReadyStatus::Ready,
            Readiness::SchemaOutdated(_) => ReadyStatus::SchemaOutdated,
            Readiness::Unavailable(_) => ReadyStatus::DatabaseUnavailable,
        }
    }

    fn schema_version(&self) -> Option<i32> {
        match self {
            Readiness::Ready(version) | Readiness::SchemaOutdated(version) => Some(*version),
            Readiness::Unavailable(_) => None,
        }
    }
}

/// A tenant's readiness as `/readyz` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    SchemaOutdated,
    DatabaseUnavailable,
    /// Router mode: no connection is open, so none was opened for a probe.
    Idle,
}

/// `/readyz` of a single-tenant process (200 when ready, 503 otherwise).
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantReadiness {
    pub status: ReadyStatus,
    pub tenant: String,
    /// The schema version the tenant database has, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub schema_version: Option<i32>,
    /// The schema version this build needs at least.
    pub needed_schema_version: i32,
    /// What to do about it, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// `/readyz` of a router: ready once its map is loaded, with each tenant's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouterReadiness {
    pub status: ReadyStatus,
    pub needed_schema_version: i32,
    pub counts: ReadyCounts,
    pub tenants: Vec<ListedReadiness>,
}

/// How many tenants are in each state.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ReadyCounts {
    pub ready: usize,
    pub schema_outdated: usize,
    pub database_unavailable: usize,
    pub idle: usize,
}

/// One tenant of a router: its display name and hosts, never a DSN.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedReadiness {
    pub tenant: String,
    pub hosts: Vec<String>,
    pub status: ReadyStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub schema_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// 200 when the database answers and its schema is new enough for this build. On a router's
/// operations port, the readiness of every tenant (see [`router_readiness`]).
#[utoipa::path(
    get, path = "/readyz", tag = "operations", operation_id = "readyz",
    summary = "Readiness: the database answers and its schema is recent enough (503 otherwise)",
    responses(
        (status = 200, description = "OK: one tenant's readiness, or in router mode every tenant's",
            body = inline(ReadyAnswer)),
        (status = 503, description = "not ready: the database does not answer or its schema is too old",
            body = TenantReadiness),
    ),
)]
pub async fn readyz(
    State(registry): State<Arc<Registry>>,
    tenant: Option<Extension<AppState>>,
) -> Response {
    let Some(Extension(state)) = tenant else {
        return router_readiness(&registry).await;
    };
    let readiness = Readiness::of(&state).await;
    let status = match readiness {
        Readiness::Ready(_) => StatusCode::OK,
        Readiness::SchemaOutdated(_) | Readiness::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = TenantReadiness {
        status: readiness.status(),
        tenant: state.tenant.get().to_string(),
        schema_version: readiness.schema_version(),
        needed_schema_version: NEEDED_SCHEMA_VERSION,
        message: match readiness {
            Readiness::Ready(_) => None,
            Readiness::SchemaOutdated(_) => Some(
                "the tenant database needs a newer schema: apply the provider first".to_owned(),
            ),
            Readiness::Unavailable(message) => Some(message),
        },
    };
    (status, Json(ReadyAnswer::Tenant(body))).into_response()
}

/// What `/readyz` answers with 200: one tenant's readiness, or a router's.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum ReadyAnswer {
    Tenant(TenantReadiness),
    Router(RouterReadiness),
}

/// A router is ready when its map is loaded: one tenant's database being down must not take
/// the replica (and with it every other tenant) out of the load balancer. The body says, per
/// tenant, whether it is reachable and whether its schema is recent enough; a tenant with no
/// connection open is reported `idle` instead of being connected to for a probe (a thousand
/// tenants would cost a thousand connections every few seconds). Host names and display names
/// only: never a DSN, user or database server.
async fn router_readiness(registry: &Registry) -> Response {
    let mut checks = tokio::task::JoinSet::new();
    let mut tenants = Vec::new();
    for (index, (state, hosts)) in registry.tenants().into_iter().enumerate() {
        tenants.push(ListedReadiness {
            tenant: state.tenant.get().to_string(),
            hosts,
            status: ReadyStatus::Idle,
            schema_version: None,
            message: None,
        });
        if state.pool.status().size > 0 {
            checks.spawn(async move { (index, Readiness::of(&state).await) });
        }
    }
    while let Some(done) = checks.join_next().await {
        let Ok((index, readiness)) = done else {
            continue;
        };
        if let Some(entry) = tenants.get_mut(index) {
            entry.status = readiness.status();
            entry.schema_version = readiness.schema_version();
            if let Readiness::Unavailable(message) = readiness {
                entry.message = Some(message);
            }
        }
    }
    let mut counts = ReadyCounts::default();
    for tenant in &tenants {
        *match tenant.status {
            ReadyStatus::Ready => &mut counts.ready,
            ReadyStatus::SchemaOutdated => &mut counts.schema_outdated,
            ReadyStatus::DatabaseUnavailable => &mut counts.database_unavailable,
            ReadyStatus::Idle => &mut counts.idle,
        } += 1;
    }
    let body = RouterReadiness {
        status: ReadyStatus::Ready,
        needed_schema_version: NEEDED_SCHEMA_VERSION,
        counts,
        tenants,
    };
    (StatusCode::OK, Json(ReadyAnswer::Router(body))).into_response()
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), Prometheus text 0.0.4 for
/// every other client.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics",
    summary = "Request counts by route and status, latency histograms, pool and connection usage",
    responses((status = 200, description = "Prometheus text format, or OpenMetrics when `Accept` asks for it")),
)]
pub async fn metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let openmetrics = crate::metrics::wants_openmetrics(accept);
    let text = registry.render_metrics(openmetrics);
    let content_type = if openmetrics {
        crate::metrics::OPENMETRICS_CONTENT_TYPE
    } else {
        crate::metrics::TEXT_CONTENT_TYPE
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations", operation_id = "openapi",
    summary = "This document",
    responses((status = 200, description = "OK", body = Object)),
)]
pub async fn openapi(State(registry): State<Arc<Registry>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi::document(registry.separate_ops()),
    )
        .into_response()
}
