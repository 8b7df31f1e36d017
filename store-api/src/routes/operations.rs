//! For orchestrators and operators: liveness, readiness, metrics and the API description.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::Json;

/// The schema version whose tables this build reads and writes. Raise it when code starts to
/// depend on a newer migration.
pub const NEEDED_SCHEMA_VERSION: i32 = 2;

/// Readiness answers quickly even when the database hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up: no database involved.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "tenant": &**state.tenant.get() }))
}

/// 200 when the database answers and its schema is new enough for this build.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        let client = state.pool.get().await.map_err(ApiError::from)?;
        usualstore_schema::applied_version(&client)
            .await
            .map_err(|error| match error {
                usualstore_schema::SchemaError::Database(error) => ApiError::from(error),
                other => {
                    tracing::warn!(error = %other, "reading the schema version failed");
                    ApiError::internal()
                }
            })
    };
    let (status, body) = match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(version)) if version >= NEEDED_SCHEMA_VERSION => (
            StatusCode::OK,
            json!({
                "status": "ready",
                "tenant": &**state.tenant.get(),
                "schema_version": version,
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
            }),
        ),
        Ok(Ok(version)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "schema_outdated",
                "tenant": &**state.tenant.get(),
                "schema_version": version,
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
                "message": "the tenant database needs a newer schema: apply the provider first",
            }),
        ),
        Ok(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "database_unavailable",
                "tenant": &**state.tenant.get(),
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
                "message": error.message,
            }),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "database_unavailable",
                "tenant": &**state.tenant.get(),
                "needed_schema_version": NEEDED_SCHEMA_VERSION,
                "message": "the database did not answer within 2 seconds",
            }),
        ),
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.pool, state.tenant.get());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(state.separate_ops))
}
