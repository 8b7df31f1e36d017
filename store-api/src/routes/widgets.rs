//! The catalogue: anyone may read it; only admins change it.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Id};
use crate::model::{List, PageParams, WIDGET_COLUMNS, Widget, ids_filter, required_text};
use crate::routes::Json;
use crate::routes::{Table, Total, created, table_page};
use crate::storefront::present::image_url;

const MAX_NAME_CHARS: usize = 200;
const MAX_TEXT_CHARS: usize = 10_000;

/// The hottest statement of the service: spelled out so no string is built per request. It runs
/// on a shared connection, pipelined with the other requests' statements (see
/// [`crate::db::SharedClients`]).
pub const SELECT_ONE: &str = "SELECT id, name, description, inventory_level, price_cents, image, \
                          created_at, updated_at FROM public.widgets WHERE id = $1";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WidgetQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    limit: Option<i64>,
    /// Rows to skip (for deeper pages follow `next`).
    #[param(minimum = 0, maximum = 1000, default = 0, nullable = false)]
    offset: Option<i64>,
    /// The `next` of the previous page: the page after it (not with `offset`).
    #[param(nullable = false)]
    after: Option<String>,
    /// Only these ids, separated by commas (1 to 100).
    #[param(pattern = r"^[0-9]+(,[0-9]+){0,99}$", nullable = false)]
    ids: Option<String>,
}

impl WidgetQuery {
    /// A plain page of the catalogue, as the storefront asks for it.
    pub fn page(params: PageParams) -> WidgetQuery {
        WidgetQuery {
            limit: params.limit,
            offset: params.offset,
            after: params.after,
            ids: None,
        }
    }
}

#[utoipa::path(
    get, path = "/api/widgets", tag = "catalogue", operation_id = "list_widgets",
    summary = "List widgets (public)",
    params(WidgetQuery),
    responses((status = 200, description = "a page of widgets", body = List<Widget>), (status = 400)),
)]
pub async fn list(
    state: AppState,
    ApiQuery(query): ApiQuery<WidgetQuery>,
) -> ApiResult<Json<List<Widget>>> {
    let ids = ids_filter(query.ids.as_deref())?;
    let page = PageParams {
        limit: query.limit,
        offset: query.offset,
        after: query.after,
    }
    .page()?;
    let table = Table {
        name: "widgets",
        columns: WIDGET_COLUMNS,
        from_row: Widget::from_plain_row,
        id_of: |widget| widget.id,
    };
    table_page(
        &state,
        &table,
        page,
        // Anyone may ask for the catalogue: its total is counted at most once a second.
        Total::Cached(&state.catalogue_total),
        ids.as_deref(),
    )
    .await
}

#[utoipa::path(
    get, path = "/api/widgets/{id}", tag = "catalogue", operation_id = "get_widget",
    summary = "One widget (public)",
    params(("id" = i64, Path)),
    responses((status = 200, description = "the widget", body = Widget), (status = 400), (status = 404)),
)]
pub async fn get(state: AppState, Id(id): Id) -> ApiResult<Json<Widget>> {
    let client = state.shared.get().await?;
    let statement = client.prepare_cached(SELECT_ONE).await?;
    let row = client
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("widget", id))?;
    Ok(Json(Widget::from_plain_row(&row)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWidget {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[schema(minimum = 0)]
    inventory_level: i32,
    #[schema(minimum = 0)]
    price_cents: i64,
    /// Empty, an http(s):// address with a host, or a path on this site (/images/x.png).
    #[serde(default)]
    image: String,
}

#[utoipa::path(
    post, path = "/api/widgets", tag = "catalogue", operation_id = "create_widget",
    summary = "Add a widget (admin)", security(("bearer" = [])),
    request_body = NewWidget,
    responses((status = 201, description = "the new widget", body = Widget)),
)]
pub async fn create(
    state: AppState,
    user: AuthUser,
    ApiJson(body): ApiJson<NewWidget>,
) -> ApiResult<Response> {
    user.require_admin("creating widgets")?;
    let name = required_text("name", &body.name, MAX_NAME_CHARS)?;
    check_text("description", &body.description)?;
    check_image(&body.image)?;
    check_not_negative("inventory_level", i64::from(body.inventory_level))?;
    check_not_negative("price_cents", body.price_cents)?;
    let client = state.pool.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO public.widgets (name, description, inventory_level, price_cents, image) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {WIDGET_COLUMNS}"
        ))
        .await?;
    let row = client
        .query_one(
            &statement,
            &[
                &name,
                &body.description,
                &body.inventory_level,
                &body.price_cents,
                &body.image,
            ],
        )
        .await?;
    let widget = Widget::from_plain_row(&row)?;
    state.catalogue_total.invalidate();
    tracing::info!(widget_id = widget.id, user_id = user.id, "widget created");
    Ok(created(format!("/api/widgets/{}", widget.id), widget))
}

/// Largest stock change one request may make.
const MAX_INVENTORY_DELTA: i32 = 1_000_000;

/// Fields left out (or null) keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetChanges {
    name: Option<String>,
    description: Option<String>,
    #[schema(minimum = 0)]
    inventory_level: Option<i32>,
    /// Added to the stock as it is at that moment (not with inventory_level); a result below 0
    /// is refused. Orders placed meanwhile are not overwritten as a read-then-set would.
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    inventory_delta: Option<i32>,
    #[schema(minimum = 0)]
    price_cents: Option<i64>,
    /// Empty, an http(s):// address with a host, or a path on this site (/images/x.png).
    image: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/widgets/{id}", tag = "catalogue", operation_id = "update_widget",
    summary = "Change a widget's fields (admin)", security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = WidgetChanges,
    responses((status = 200, description = "the widget", body = Widget), (status = 404)),
)]
pub async fn update(
    state: AppState,
    user: AuthUser,
    Id(id): Id,
    ApiJson(body): ApiJson<WidgetChanges>,
) -> ApiResult<Json<Widget>> {
    user.require_admin("changing widgets")?;
    let name = body
        .name
        .as_deref()
        .map(|name| required_text("name", name, MAX_NAME_CHARS))
        .transpose()?;
    if let Some(text) = &body.description {
        check_text("description", text)?;
    }
    if let Some(text) = &body.image {
        check_image(text)?;
    }
    if let Some(level) = body.inventory_level {
        check_not_negative("inventory_level", i64::from(level))?;
    }
    if let Some(delta) = body.inventory_delta {
        if body.inventory_level.is_some() {
            return Err(ApiError::invalid(
                "inventory_delta",
                "give inventory_level (the new stock) or inventory_delta (a change to it), not both",
            ));
        }
        if delta == 0 || delta.abs() > MAX_INVENTORY_DELTA {
            return Err(ApiError::invalid(
                "inventory_delta",
                format!(
                    "inventory_delta must be a non-zero change of at most {MAX_INVENTORY_DELTA} units either way"
                ),
            ));
        }
    }
    if let Some(price) = body.price_cents {
        check_not_negative("price_cents", price)?;
    }
    let client = state.pool.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "UPDATE public.widgets SET name = coalesce($2, name), \
             description = coalesce($3, description), \
             inventory_level = coalesce($4, inventory_level + coalesce($7, 0)), \
             price_cents = coalesce($5, price_cents), image = coalesce($6, image) \
             WHERE id = $1 RETURNING {WIDGET_COLUMNS}"
        ))
        .await?;
    let row = client
        .query_opt(
            &statement,
            &[
                &id,
                &name,
                &body.description,
                &body.inventory_level,
                &body.price_cents,
                &body.image,
                &body.inventory_delta,
            ],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("widget", id))?;
    tracing::info!(widget_id = id, user_id = user.id, "widget changed");
    Ok(Json(Widget::from_plain_row(&row)?))
}

#[utoipa::path(
    delete, path = "/api/widgets/{id}", tag = "catalogue", operation_id = "delete_widget",
    summary = "Delete a widget that has no orders (admin)", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 400), (status = 404), (status = 409)),
)]
pub async fn delete(state: AppState, user: AuthUser, Id(id): Id) -> ApiResult<StatusCode> {
    user.require_admin("deleting widgets")?;
    let client = state.pool.get().await?;
    let statement = client
        .prepare_cached("DELETE FROM public.widgets WHERE id = $1")
        .await?;
    match client.execute(&statement, &[&id]).await {
        Ok(0) => Err(ApiError::not_found("widget", id)),
        Ok(_) => {
            state.catalogue_total.invalidate();
            tracing::info!(widget_id = id, user_id = user.id, "widget deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(error) if crate::db::classify(&error) == crate::db::Failure::Referenced => {
            Err(ApiError::conflict(
                "widget_has_orders",
                format!("widget {id} has orders; orders keep their history, so it stays"),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Empty, or an address the storefront would show: `http(s)://host/…` or a path on this site. The
/// storefront applies the same rule when it renders, for rows written by other means.
fn check_image(value: &str) -> Result<(), ApiError> {
    check_text("image", value)?;
    if !value.trim().is_empty() && image_url(value).is_none() {
        return Err(ApiError::invalid(
            "image",
            "image must be empty, an http:// or https:// address with a host, or a path on this \
             site such as /images/bolt.png",
        ));
    }
    Ok(())
}

fn check_not_negative(field: &str, value: i64) -> Result<(), ApiError> {
    if value < 0 {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be negative"),
        ));
    }
    Ok(())
}
