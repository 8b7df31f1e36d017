//! For orchestrators and operators: liveness, readiness, metrics and the API description.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
pub async fn healthz(tenant: Option<Extension<AppState>>) -> Json<Value> {
    match tenant {
        Some(Extension(state)) => Json(json!({ "status": "ok", "tenant": &**state.tenant.get() })),
        None => Json(json!({ "status": "ok" })),
    }
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

    fn status(&self) -> &'static str {
        match self {
            Readiness::Ready(_) => "ready",
            Readiness::SchemaOutdated(_) => "schema_outdated",
            Readiness::Unavailable(_) => "database_unavailable",
        }
    }
}

/// 200 when the database answers and its schema is new enough for this build. On a router's
/// operations port, the readiness of every tenant (see [`router_readiness`]).
pub async fn readyz(
    State(registry): State<Arc<Registry>>,
    tenant: Option<Extension<AppState>>,
) -> Response {
    let Some(Extension(state)) = tenant else {
        return router_readiness(&registry).await;
    };
    let tenant = state.tenant.get();
    let readiness = Readiness::of(&state).await;
    let (status, body) = match &readiness {
        Readiness::Ready(version) => (
            StatusCode::OK,
            json!({
                "status": "ready",
                "tenant": &**tenant,
                "schema_version": version,
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
            }),
        ),
        Readiness::SchemaOutdated(version) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "schema_outdated",
                "tenant": &**tenant,
                "schema_version": version,
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
                "message": "the tenant database needs a newer schema: apply the provider first",
            }),
        ),
        Readiness::Unavailable(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "database_unavailable",
                "tenant": &**tenant,
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
                "message": message,
            }),
        ),
    };
    (status, Json(body)).into_response()
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
        tenants.push(json!({
            "tenant": &**state.tenant.get(),
            "hosts": hosts,
            "status": "idle",
        }));
        if state.pool.status().size > 0 {
            checks.spawn(async move { (index, Readiness::of(&state).await) });
        }
    }
    while let Some(done) = checks.join_next().await {
        let Ok((index, readiness)) = done else {
            continue;
        };
        if let Some(Value::Object(entry)) = tenants.get_mut(index) {
            entry.insert("status".to_owned(), json!(readiness.status()));
            match readiness {
                Readiness::Ready(version) | Readiness::SchemaOutdated(version) => {
                    entry.insert("schema_version".to_owned(), json!(version));
                }
                Readiness::Unavailable(message) => {
                    entry.insert("message".to_owned(), json!(message));
                }
            }
        }
    }
    let count = |status: &str| {
        tenants
            .iter()
            .filter(|tenant| tenant["status"] == status)
            .count()
    };
    let body = json!({
        "status": "ready",
        "needed_schema_version": NEEDED_SCHEMA_VERSION,
        "counts": {
            "ready": count("ready"),
            "schema_outdated": count("schema_outdated"),
            "database_unavailable": count("database_unavailable"),
            "idle": count("idle"),
        },
        "tenants": tenants,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), Prometheus text 0.0.4 for
/// every other client.
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

pub async fn openapi(State(registry): State<Arc<Registry>>) -> Json<Value> {
    Json(crate::openapi::document(registry.separate_ops()))
}
