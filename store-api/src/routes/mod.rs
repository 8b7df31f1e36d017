//! The handlers, one module per resource.

pub mod customers;
pub mod operations;
pub mod orders;
pub mod reference;
pub mod session;
pub mod users;
pub mod widgets;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::model::{List, Page};

/// One page of a whole table, by id: `columns` of `table`, each row read by `from_row`, with the
/// table's total count.
pub async fn table_page<T>(
    state: &AppState,
    table: &str,
    columns: &str,
    page: Page,
    from_row: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> ApiResult<Json<List<T>>> {
    let client = state.pool.get().await?;
    let select = client
        .prepare_cached(&format!(
            "SELECT {columns} FROM public.{table} ORDER BY id LIMIT $1 OFFSET $2"
        ))
        .await?;
    let count = client
        .prepare_cached(&format!("SELECT count(*) FROM public.{table}"))
        .await?;
    // Both statements go out on the connection at once: one round trip's wait.
    let select_params: [&(dyn ToSql + Sync); 2] = [&page.limit, &page.offset];
    let (rows, total) = tokio::try_join!(
        client.query(&select, &select_params),
        client.query_one(&count, &[]),
    )?;
    let items = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    Ok(Json(List {
        tenant: state.tenant.to_string(),
        items,
        total: total.try_get(0)?,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// 201 with the new resource and where it lives.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
