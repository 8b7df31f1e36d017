//! Customers: any signed-in user may read them; admins and developers add them.

use axum::response::Response;
use serde::Deserialize;
use tokio_postgres::types::ToSql;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Id};
use crate::model::{
    CUSTOMER_COLUMNS, Customer, List, PageParams, email, ids_filter, required_text,
};
use crate::routes::Json;
use crate::routes::created;

const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    limit: Option<i64>,
    /// Rows to skip (for deeper pages follow `next`).
    #[param(minimum = 0, maximum = 1000, default = 0, nullable = false)]
    offset: Option<i64>,
    /// The `next` of the previous page: the page after it (not with `offset`).
    #[param(nullable = false)]
    after: Option<String>,
    /// Matches name or email, any case.
    #[param(nullable = false)]
    q: Option<String>,
    /// Only these ids, separated by commas (1 to 100).
    #[param(pattern = r"^[0-9]+(,[0-9]+){0,99}$", nullable = false)]
    ids: Option<String>,
}

#[utoipa::path(
    get, path = "/api/customers", tag = "customers", operation_id = "list_customers",
    summary = "List customers",
    security(("bearer" = [])),
    params(CustomerQuery),
    responses((status = 200, description = "a page of customers", body = List<Customer>), (status = 400)),
)]
pub async fn list(
    state: AppState,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<CustomerQuery>,
) -> ApiResult<Json<List<Customer>>> {
    let ids = ids_filter(query.ids.as_deref())?;
    let page = PageParams {
        limit: query.limit,
        offset: query.offset,
        after: query.after,
    }
    .page()?;
    let after = page.after_id()?;
    let pattern = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| format!("%{}%", escape_like(q)));
    // $1 the pattern, $2 the ids: the same numbers in both statements.
    let filter = "($1::text IS NULL OR (first_name || ' ' || last_name) ILIKE $1 \
                  OR email ILIKE $1) AND ($2::int8[] IS NULL OR id = ANY($2))";
    let client = state.pool.get().await?;
    let select = client
        .prepare_cached(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM public.customers WHERE {filter} AND id > $5 \
             ORDER BY id LIMIT $3 OFFSET $4"
        ))
        .await?;
    let count = client
        .prepare_cached(&format!(
            "SELECT count(*) FROM public.customers WHERE {filter}"
        ))
        .await?;
    let fetch = page.fetch();
    let select_params: [&(dyn ToSql + Sync); 5] = [&pattern, &ids, &fetch, &page.offset, &after];
    let count_params: [&(dyn ToSql + Sync); 2] = [&pattern, &ids];
    let (rows, total) = tokio::try_join!(
        client.query(&select, &select_params),
        client.query_one(&count, &count_params),
    )?;
    let items = rows
        .iter()
        .map(|row| Customer::from_row(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    let tenant = state.tenant.get().to_string();
    Ok(Json(page.list(
        tenant,
        items,
        total.try_get(0)?,
        |customer| customer.id.to_string(),
    )))
}

/// `%`, `_` and `\` in a search term are literal characters, not wildcards.
fn escape_like(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len());
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[utoipa::path(
    get, path = "/api/customers/{id}", tag = "customers", operation_id = "get_customer",
    summary = "One customer",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "the customer", body = Customer), (status = 400), (status = 404)),
)]
pub async fn get(state: AppState, _user: AuthUser, Id(id): Id) -> ApiResult<Json<Customer>> {
    let client = state.shared.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM public.customers WHERE id = $1"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    Ok(Json(Customer::from_row(&row, "")?))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub first_name: String,
    pub last_name: String,
    #[schema(format = Email)]
    pub email: String,
}

impl NewCustomer {
    /// Trimmed and checked; `prefix` places the field names in the request (`customer.`).
    pub fn validated(&self, prefix: &str) -> Result<NewCustomer, ApiError> {
        Ok(NewCustomer {
            first_name: required_text(
                &format!("{prefix}first_name"),
                &self.first_name,
                MAX_NAME_CHARS,
            )?,
            last_name: required_text(
                &format!("{prefix}last_name"),
                &self.last_name,
                MAX_NAME_CHARS,
            )?,
            email: email(&format!("{prefix}email"), &self.email)?,
        })
    }
}

#[utoipa::path(
    post, path = "/api/customers", tag = "customers", operation_id = "create_customer",
    summary = "Add a customer (admin, developer)",
    security(("bearer" = [])),
    request_body = NewCustomer,
    responses((status = 201, description = "the new customer", body = Customer), (status = 409)),
)]
pub async fn create(
    state: AppState,
    user: AuthUser,
    ApiJson(body): ApiJson<NewCustomer>,
) -> ApiResult<Response> {
    user.require_writer("adding customers")?;
    let customer = body.validated("")?;
    let client = state.pool.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO public.customers (first_name, last_name, email) VALUES ($1, $2, $3) \
             RETURNING {CUSTOMER_COLUMNS}"
        ))
        .await?;
    let row = client
        .query_one(
            &statement,
            &[&customer.first_name, &customer.last_name, &customer.email],
        )
        .await?;
    let customer = Customer::from_row(&row, "")?;
    tracing::info!(
        customer_id = customer.id,
        user_id = user.id,
        "customer added"
    );
    Ok(created(format!("/api/customers/{}", customer.id), customer))
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
    }
}
