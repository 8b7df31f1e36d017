//! Reference data: the order and payment statuses the schema seeds.

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::model::Status;
use crate::routes::Json;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusList {
    pub tenant: String,
    pub items: Vec<Status>,
}

#[utoipa::path(
    get, path = "/api/statuses", tag = "reference", operation_id = "list_statuses",
    summary = "Order statuses",
    security(("bearer" = [])),
    responses((status = 200, description = "every order status", body = StatusList)),
)]
pub async fn statuses(state: AppState, _user: AuthUser) -> ApiResult<Json<StatusList>> {
    read(&state, "SELECT id, name FROM public.statuses ORDER BY id").await
}

#[utoipa::path(
    get, path = "/api/transaction-statuses", tag = "reference", operation_id = "list_transaction_statuses",
    summary = "Payment statuses",
    security(("bearer" = [])),
    responses((status = 200, description = "every payment status", body = StatusList)),
)]
pub async fn transaction_statuses(state: AppState, _user: AuthUser) -> ApiResult<Json<StatusList>> {
    read(
        &state,
        "SELECT id, name FROM public.transaction_statuses ORDER BY id",
    )
    .await
}

async fn read(state: &AppState, sql: &str) -> ApiResult<Json<StatusList>> {
    let client = state.shared.get().await?;
    let statement = client.prepare_cached(sql).await?;
    let items = client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Status {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(Json(StatusList {
        tenant: state.tenant.get().to_string(),
        items,
    }))
}
