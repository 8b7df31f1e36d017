//! Orders: placing one is a single database transaction (payment row, order row, stock
//! decrement), so a failure at any step leaves nothing behind.

use axum::response::Response;
use serde::Deserialize;
use std::sync::LazyLock;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Id};
use crate::model::{
    CUSTOMER_COLUMNS, Customer, List, Order, OrderDetail, PageParams, Transaction, WIDGET_COLUMNS,
    Widget, time_id_cursor,
};
use crate::routes::Json;
use crate::routes::created;
use crate::routes::customers::NewCustomer;

/// One order of a widget cannot exceed this many units.
pub const MAX_QUANTITY: i32 = 10_000;
const MAX_PAYMENT_TEXT: usize = 255;
/// Order status of a newly placed order.
const PLACED: &str = "Cleared";
/// Payment statuses a new order may start with.
const PAYMENT_STATUSES_AT_CHECKOUT: [&str; 2] = ["Cleared", "Pending"];

const ORDER_COLUMNS: &str = "o.id, o.widget_id, o.customer_id, o.transaction_id, s.name AS status, \
                             o.quantity, o.amount_cents, o.created_at, o.updated_at";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    limit: Option<i64>,
    /// Rows to skip (for deeper pages follow `next`).
    #[param(minimum = 0, maximum = 1000, default = 0, nullable = false)]
    offset: Option<i64>,
    /// The `next` of the previous page: the page after it (not with `offset`).
    #[param(nullable = false)]
    after: Option<String>,
    /// Order status name (`Cleared`, `Refunded`, `Cancelled`), any case.
    #[param(nullable = false)]
    status: Option<String>,
    /// Orders of one customer.
    #[param(nullable = false)]
    customer_id: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/orders", tag = "orders", operation_id = "list_orders",
    summary = "List orders, newest first",
    security(("bearer" = [])),
    params(OrderQuery),
    responses((status = 200, description = "a page of orders", body = List<Order>), (status = 400)),
)]
pub async fn list(
    state: AppState,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> ApiResult<Json<List<Order>>> {
    let page = PageParams {
        limit: query.limit,
        offset: query.offset,
        after: query.after,
    }
    .page()?;
    let (after_time, after_id) = page.after_time_id()?;
    let client = state.pool.get().await?;
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => {
            let lookup = client
                .prepare_cached("SELECT name FROM public.statuses WHERE lower(name) = lower($1)")
                .await?;
            match client.query_opt(&lookup, &[&name]).await? {
                Some(row) => Some(row.try_get::<_, String>(0)?),
                None => {
                    return Err(ApiError::invalid(
                        "status",
                        format!("unknown order status {name:?}; GET /api/statuses lists them"),
                    ));
                }
            }
        }
    };
    let filter = "($1::text IS NULL OR s.name = $1) AND ($2::bigint IS NULL OR o.customer_id = $2)";
    let select = client
        .prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM public.orders o \
             JOIN public.statuses s ON s.id = o.status_id WHERE {filter} \
             AND o.created_at <= $5 AND (o.created_at < $5 OR o.id < $6) \
             ORDER BY o.created_at DESC, o.id DESC LIMIT $3 OFFSET $4"
        ))
        .await?;
    let count = client
        .prepare_cached(&format!(
            "SELECT count(*) FROM public.orders o \
             JOIN public.statuses s ON s.id = o.status_id WHERE {filter}"
        ))
        .await?;
    let fetch = page.fetch();
    let select_params: [&(dyn ToSql + Sync); 6] = [
        &status,
        &query.customer_id,
        &fetch,
        &page.offset,
        &after_time,
        &after_id,
    ];
    let count_params: [&(dyn ToSql + Sync); 2] = [&status, &query.customer_id];
    let (rows, total) = tokio::try_join!(
        client.query(&select, &select_params),
        client.query_one(&count, &count_params),
    )?;
    let items = rows
        .iter()
        .map(Order::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let tenant = state.tenant.get().to_string();
    Ok(Json(page.list(tenant, items, total.try_get(0)?, |order| {
        time_id_cursor(order.created_at, order.id)
    })))
}

/// An order with its widget (`w_…`), customer (`c_…`) and transaction (`t_…`) in one row.
static DETAIL_QUERY: LazyLock<String> = LazyLock::new(detail_query);

fn detail_query() -> String {
    let prefixed = |alias: &str, columns: &str| {
        columns
            .split(", ")
            .map(|column| format!("{alias}.{column} AS {alias}_{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "SELECT {ORDER_COLUMNS}, {}, {}, \
         t.id AS t_id, t.amount_cents AS t_amount_cents, t.currency AS t_currency, \
         t.last_four AS t_last_four, t.bank_return_code AS t_bank_return_code, \
         t.expiry_month AS t_expiry_month, t.expiry_year AS t_expiry_year, \
         t.payment_intent AS t_payment_intent, t.payment_method AS t_payment_method, \
         ts.name AS t_status, t.created_at AS t_created_at, t.updated_at AS t_updated_at \
         FROM public.orders o \
         JOIN public.statuses s ON s.id = o.status_id \
         JOIN public.widgets w ON w.id = o.widget_id \
         JOIN public.customers c ON c.id = o.customer_id \
         JOIN public.transactions t ON t.id = o.transaction_id \
         JOIN public.transaction_statuses ts ON ts.id = t.transaction_status_id \
         WHERE o.id = $1",
        prefixed("w", WIDGET_COLUMNS),
        prefixed("c", CUSTOMER_COLUMNS),
    )
}

fn detail_from_row(row: &Row) -> Result<OrderDetail, tokio_postgres::Error> {
    Ok(OrderDetail {
        order: Order::from_row(row)?,
        widget: Widget::from_row(row, "w_")?,
        customer: Customer::from_row(row, "c_")?,
        transaction: Transaction::from_row(row)?,
    })
}

#[utoipa::path(
    get, path = "/api/orders/{id}", tag = "orders", operation_id = "get_order",
    summary = "One order with its widget, customer and transaction",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "the order", body = OrderDetail), (status = 400), (status = 404)),
)]
pub async fn get(state: AppState, _user: AuthUser, Id(id): Id) -> ApiResult<Json<OrderDetail>> {
    let client = state.shared.get().await?;
    let statement = client.prepare_cached(&DETAIL_QUERY).await?;
    let row = client
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    Ok(Json(detail_from_row(&row)?))
}

/// Exactly one of customer_id and customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    widget_id: i64,
    #[schema(minimum = 1, maximum = 10_000)]
    quantity: i32,
    /// An existing customer…
    customer_id: Option<i64>,
    /// …or one found by email, and added if new.
    customer: Option<NewCustomer>,
    #[schema(inline)]
    payment: Payment,
}

/// What the transactions table records about the payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: String,
    /// If given, must equal price × quantity (409 otherwise: the client's idea of the price is
    /// stale).
    amount_cents: Option<i64>,
    #[schema(pattern = "^[0-9]{4}$")]
    last_four: Option<String>,
    bank_return_code: Option<String>,
    #[schema(minimum = 1, maximum = 12)]
    expiry_month: Option<i32>,
    #[schema(minimum = 2000, maximum = 9999)]
    expiry_year: Option<i32>,
    payment_intent: Option<String>,
    payment_method: Option<String>,
    /// `Cleared` (default) or `Pending`.
    #[schema(schema_with = crate::openapi::payment_status_at_checkout)]
    status: Option<String>,
}

enum Buyer {
    Existing(i64),
    New(NewCustomer),
}

struct CheckedPayment {
    currency: String,
    status: &'static str,
}

fn check(body: &PlaceOrder) -> Result<(Buyer, CheckedPayment), ApiError> {
    if !(1..=MAX_QUANTITY).contains(&body.quantity) {
        return Err(ApiError::invalid(
            "quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    let buyer = match (&body.customer_id, &body.customer) {
        (Some(id), None) => Buyer::Existing(*id),
        (None, Some(customer)) => Buyer::New(customer.validated("customer.")?),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "customer",
                "give either customer_id or customer, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "customer_id or customer (first_name, last_name, email) is required",
            )
            .with_field("customer_id"));
        }
    };
    let payment = &body.payment;
    let currency = payment.currency.trim();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ApiError::invalid(
            "payment.currency",
            "payment.currency must be a three-letter ISO 4217 code",
        ));
    }
    if let Some(last_four) = &payment.last_four
        && (last_four.len() != 4 || !last_four.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::invalid(
            "payment.last_four",
            "payment.last_four must be four digits",
        ));
    }
    if let Some(month) = payment.expiry_month
        && !(1..=12).contains(&month)
    {
        return Err(ApiError::invalid(
            "payment.expiry_month",
            "payment.expiry_month must be between 1 and 12",
        ));
    }
    if let Some(year) = payment.expiry_year
        && !(2000..=9999).contains(&year)
    {
        return Err(ApiError::invalid(
            "payment.expiry_year",
            "payment.expiry_year must be between 2000 and 9999",
        ));
    }
    for (field, value) in [
        ("payment.bank_return_code", &payment.bank_return_code),
        ("payment.payment_intent", &payment.payment_intent),
        ("payment.payment_method", &payment.payment_method),
    ] {
        if value
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_PAYMENT_TEXT)
        {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be at most {MAX_PAYMENT_TEXT} characters"),
            ));
        }
    }
    let status = match payment.status.as_deref().map(str::trim) {
        None => PAYMENT_STATUSES_AT_CHECKOUT[0],
        Some(name) => PAYMENT_STATUSES_AT_CHECKOUT
            .into_iter()
            .find(|allowed| allowed.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ApiError::invalid(
                    "payment.status",
                    "payment.status must be Cleared or Pending for a new order",
                )
            })?,
    };
    Ok((
        buyer,
        CheckedPayment {
            currency: currency.to_ascii_uppercase(),
            status,
        },
    ))
}

/// Columns the order statements return: the order (0..9), its payment (9..21), the widget after
/// the stock was taken (21..29) and the customer (29..35).
const PLACED_COLUMNS: &str = "o.id, o.widget_id, o.customer_id, o.transaction_id, \
    $12::text AS status, o.quantity, o.amount_cents, o.created_at, o.updated_at, \
    t.id, t.amount_cents, t.currency, t.last_four, t.bank_return_code, t.expiry_month, \
    t.expiry_year, t.payment_intent, t.payment_method, $11::text, t.created_at, t.updated_at, \
    w.id, w.name, w.description, w.inventory_level, w.price_cents, w.image, w.created_at, \
    w.updated_at, \
    c.id, c.first_name, c.last_name, c.email, c.created_at, c.updated_at";

/// The stock, the payment and the order, in one statement (one round trip, atomic by itself:
/// nothing is written unless everything is). `before` and `after` define, around the widget's
/// update `w`, the CTE `c` (the customer); `stock_condition` adds to the widget's condition.
///
/// - The widget's `UPDATE` takes its row lock and re-checks the condition against the latest
///   stock, so concurrent orders never oversell; it also checks the client's amount, if given.
/// - The payment and the order are inserted only from the updated widget's row: when the stock
///   was short, the amount wrong or the customer unknown, the statement writes nothing and
///   returns no row, and [`place`] finds out why.
/// - The order's `customer_id` is `(SELECT id FROM c)`, and NULL when the statement is still
///   running after $13 seconds (the time its request has left): a customer who could not be
///   found nor added, or a statement that waited for a lock past its request's end, makes the
///   NOT NULL constraint fail and undo the whole statement. An order the client was told had
///   timed out is never written later (see [`place`]).
///
/// Parameters: $1 widget id, $2 quantity, $3 expected amount (or NULL), $4 currency, $5 last
/// four, $6 bank return code, $7 expiry month, $8 expiry year, $9 payment intent, $10 payment
/// method, $11 payment status name, $12 order status name, $13 seconds left, then the buyer's.
fn place_statement(before: &str, stock_condition: &str, after: &str) -> String {
    format!(
        "WITH {before} \
         w AS ( \
            UPDATE public.widgets SET inventory_level = inventory_level - $2 \
            WHERE id = $1 {stock_condition} AND CASE WHEN inventory_level >= $2 \
                THEN $3::bigint IS NULL OR price_cents * $2 = $3 ELSE false END \
            RETURNING {WIDGET_COLUMNS} \
         ), {after} \
         t AS ( \
            INSERT INTO public.transactions (amount_cents, currency, last_four, \
                bank_return_code, expiry_month, expiry_year, payment_intent, payment_method, \
                transaction_status_id) \
            SELECT w.price_cents * $2, $4, $5, $6, $7, $8, $9, $10, \
                (SELECT id FROM public.transaction_statuses WHERE name = $11) \
            FROM w \
            RETURNING * \
         ), o AS ( \
            INSERT INTO public.orders (widget_id, transaction_id, status_id, customer_id, \
                quantity, amount_cents) \
            SELECT $1, t.id, (SELECT id FROM public.statuses WHERE name = $12), \
                CASE WHEN clock_timestamp() < statement_timestamp() + make_interval(secs => $13) \
                    THEN (SELECT id FROM c) END, \
                $2, t.amount_cents \
            FROM t \
            RETURNING * \
         ) \
         SELECT {PLACED_COLUMNS} FROM o JOIN t ON t.id = o.transaction_id CROSS JOIN w CROSS JOIN c"
    )
}

/// An order for a known customer: $14 customer id. Without that customer nothing is updated.
static PLACE_FOR_CUSTOMER: LazyLock<String> = LazyLock::new(|| {
    place_statement(
        &format!("c AS (SELECT {CUSTOMER_COLUMNS} FROM public.customers WHERE id = $14),"),
        "AND EXISTS (SELECT FROM c)",
        "",
    )
});

/// The statement of an order for a known customer (for `make bench`'s extra baseline).
pub fn place_for_customer() -> &'static str {
    &PLACE_FOR_CUSTOMER
}

/// An order for a customer found by e-mail or added ($14 email, $15 first name, $16 last name).
/// The customer is added only once the stock is taken (`FROM w`), so a refused order adds no
/// customer, and every order locks the widget before it adds a customer (no deadlock between
/// two orders). A customer added by a concurrent order after this statement's snapshot makes
/// the insert a no-op and `c` empty: the statement fails and [`place`] runs it again.
static PLACE_FOR_EMAIL: LazyLock<String> = LazyLock::new(|| {
    place_statement(
        &format!(
            "found AS (SELECT {CUSTOMER_COLUMNS} FROM public.customers \
                WHERE lower(email) = lower($14)),"
        ),
        "",
        &format!(
            "added AS (INSERT INTO public.customers (first_name, last_name, email) \
                SELECT $15, $16, $14 FROM w WHERE NOT EXISTS (SELECT FROM found) \
                ON CONFLICT ((lower(email))) DO NOTHING RETURNING {CUSTOMER_COLUMNS}), \
             c AS (SELECT * FROM found UNION ALL SELECT * FROM added),"
        ),
    )
});

/// Why an order statement wrote nothing: $1 widget id, $2 customer id (or NULL).
const WHY_NOT_PLACED: &str = "SELECT $2::bigint IS NULL \
        OR EXISTS (SELECT FROM public.customers WHERE id = $2), \
        w.inventory_level, w.price_cents \
     FROM (SELECT) one LEFT JOIN public.widgets w ON w.id = $1";

/// How often an order is tried when the state it saw changed under it.
const PLACE_ATTEMPTS: usize = 3;

/// An order statement must be done this long before its request's end: time for its answer to
/// come back before the request timeout answers 503 instead.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

#[utoipa::path(
    post, path = "/api/orders", tag = "orders", operation_id = "place_order",
    summary = "Place an order: stock, payment and order written together or not at all (admin, developer)",
    security(("bearer" = [])),
    request_body = PlaceOrder,
    responses((status = 201, description = "the order with widget, customer and transaction", body = OrderDetail), (status = 404), (status = 409)),
)]
pub async fn place(
    state: AppState,
    user: AuthUser,
    ApiJson(body): ApiJson<PlaceOrder>,
) -> ApiResult<Response> {
    user.require_writer("placing orders")?;
    let (buyer, payment) = check(&body)?;
    // A connection of its own: the statement may wait for the widget's row lock.
    let client = state.pool.get().await?;
    let statement = match &buyer {
        Buyer::Existing(_) => client.prepare_cached(&PLACE_FOR_CUSTOMER).await?,
        Buyer::New(_) => client.prepare_cached(&PLACE_FOR_EMAIL).await?,
    };
    let customer_id = match &buyer {
        Buyer::Existing(id) => Some(*id),
        Buyer::New(_) => None,
    };
    let p = &body.payment;
    for _ in 0..PLACE_ATTEMPTS {
        let left = crate::error::time_left()
            .unwrap_or(state.request_timeout)
            .saturating_sub(ANSWER_MARGIN);
        if left.is_zero() {
            break;
        }
        let seconds_left = left.as_secs_f64();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &body.widget_id,
            &body.quantity,
            &p.amount_cents,
            &payment.currency,
            &p.last_four,
            &p.bank_return_code,
            &p.expiry_month,
            &p.expiry_year,
            &p.payment_intent,
            &p.payment_method,
            &payment.status,
            &PLACED,
            &seconds_left,
        ];
        match &buyer {
            Buyer::Existing(id) => params.push(id),
            Buyer::New(new) => params.extend([
                &new.email as &(dyn ToSql + Sync),
                &new.first_name,
                &new.last_name,
            ]),
        }
        let row = match client.query_opt(&statement, &params).await {
            Ok(row) => row,
            Err(error) if is_unplaced_order(&error) => {
                // Either the customer was added concurrently (again, with a fresh snapshot) or
                // the statement outlived its request (then the loop ends for lack of time).
                tracing::debug!("the order statement wrote nothing; trying again");
                continue;
            }
            Err(error) if error.code() == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) => {
                return Err(ApiError::invalid(
                    "quantity",
                    "the order's total is too large",
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let Some(row) = row else {
            match why_not_placed(&client, &body, customer_id).await? {
                Some(refusal) => return Err(refusal),
                // The stock, price or customer changed since the statement looked: again.
                None => continue,
            }
        };
        let detail = OrderDetail {
            order: Order::from_row_at(&row, 0)?,
            transaction: Transaction::from_row_at(&row, 9)?,
            widget: Widget::from_row_at(&row, 21)?,
            customer: Customer::from_row_at(&row, 29)?,
        };
        tracing::info!(
            order_id = detail.order.id,
            widget_id = detail.widget.id,
            customer_id = detail.customer.id,
            quantity = detail.order.quantity,
            user_id = user.id,
            "order placed"
        );
        return Ok(created(format!("/api/orders/{}", detail.order.id), detail));
    }
    if crate::error::time_left().is_some_and(|left| left <= ANSWER_MARGIN) {
        return Err(ApiError::unavailable(
            "timeout",
            "the request took too long and was abandoned; nothing was written; try again",
        ));
    }
    Err(ApiError::unavailable(
        "contention",
        "the order collided with other changes; try again",
    ))
}

/// The NOT NULL violation of `orders.customer_id` an order statement raises when its customer
/// was added by someone else meanwhile, or when it ran out of time.
fn is_unplaced_order(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::NOT_NULL_VIOLATION
            && db.table() == Some("orders")
            && db.column() == Some("customer_id")
    })
}

/// The answer for an order that wrote nothing, in the order they were always checked: unknown
/// customer, unknown widget, short stock, wrong amount. `None`: none of them holds (any more).
async fn why_not_placed(
    client: &deadpool_postgres::Client,
    body: &PlaceOrder,
    customer_id: Option<i64>,
) -> Result<Option<ApiError>, ApiError> {
    let statement = client.prepare_cached(WHY_NOT_PLACED).await?;
    let row = client
        .query_one(&statement, &[&body.widget_id, &customer_id])
        .await?;
    if !row.try_get::<_, bool>(0)? {
        let id = customer_id.unwrap_or_default();
        return Ok(Some(
            ApiError::not_found("customer", id).with_field("customer_id"),
        ));
    }
    let (Some(stock), Some(price)) = (
        row.try_get::<_, Option<i32>>(1)?,
        row.try_get::<_, Option<i64>>(2)?,
    ) else {
        return Ok(Some(
            ApiError::not_found("widget", body.widget_id).with_field("widget_id"),
        ));
    };
    if stock < body.quantity {
        return Ok(Some(ApiError::conflict(
            "insufficient_stock",
            format!(
                "widget {} has {stock} in stock; {} ordered",
                body.widget_id, body.quantity
            ),
        )));
    }
    let Some(amount) = price.checked_mul(i64::from(body.quantity)) else {
        return Ok(Some(ApiError::invalid(
            "quantity",
            "the order's total is too large",
        )));
    };
    match body.payment.amount_cents {
        Some(expected) if expected != amount => Ok(Some(
            ApiError::conflict(
                "amount_mismatch",
                format!(
                    "payment.amount_cents is {expected} but {} × {price} cents is {amount}",
                    body.quantity
                ),
            )
            .with_field("payment.amount_cents"),
        )),
        _ => Ok(None),
    }
}

#[utoipa::path(
    post, path = "/api/orders/{id}/refund", tag = "orders", operation_id = "refund_order",
    summary = "Refund a Cleared order (admin, developer)",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "the order", body = OrderDetail), (status = 400), (status = 404), (status = 409)),
)]
pub async fn refund(state: AppState, user: AuthUser, Id(id): Id) -> ApiResult<Json<OrderDetail>> {
    user.require_writer("refunding orders")?;
    settle(&state, &user, id, "Refunded", false).await
}

/// Cancelling also puts the units back in stock: they never left.
#[utoipa::path(
    post, path = "/api/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order",
    summary = "Cancel a Cleared order and restock it (admin, developer)",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "the order", body = OrderDetail), (status = 400), (status = 404), (status = 409)),
)]
pub async fn cancel(state: AppState, user: AuthUser, Id(id): Id) -> ApiResult<Json<OrderDetail>> {
    user.require_writer("cancelling orders")?;
    settle(&state, &user, id, "Cancelled", true).await
}

/// Moves a `Cleared` order to `status` and marks its payment refunded, atomically.
async fn settle(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    status: &'static str,
    restock: bool,
) -> ApiResult<Json<OrderDetail>> {
    let mut client = state.pool.get().await?;
    let transaction = client.transaction().await?;
    let lock = transaction
        .prepare_cached(
            "SELECT s.name, o.widget_id, o.quantity, o.transaction_id FROM public.orders o \
             JOIN public.statuses s ON s.id = o.status_id WHERE o.id = $1 FOR UPDATE OF o",
        )
        .await?;
    let row = transaction
        .query_opt(&lock, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    let current: String = row.try_get(0)?;
    if current != PLACED {
        return Err(ApiError::conflict(
            "invalid_status",
            format!("order {id} is {current}; only {PLACED} orders can become {status}"),
        ));
    }
    let widget_id: i64 = row.try_get(1)?;
    let quantity: i32 = row.try_get(2)?;
    let transaction_id: i64 = row.try_get(3)?;

    let set_order = transaction
        .prepare_cached(
            "UPDATE public.orders SET status_id = (SELECT id FROM public.statuses WHERE name = $2) \
             WHERE id = $1",
        )
        .await?;
    let set_payment = transaction
        .prepare_cached(
            "UPDATE public.transactions SET transaction_status_id = \
             (SELECT id FROM public.transaction_statuses WHERE name = 'Refunded') WHERE id = $1",
        )
        .await?;
    let order_params: [&(dyn ToSql + Sync); 2] = [&id, &status];
    let payment_params: [&(dyn ToSql + Sync); 1] = [&transaction_id];
    // In a transaction: polled in the order sent, so the error is the first statement's rather
    // than the second's "transaction is aborted".
    tokio::try_join!(
        biased;
        transaction.execute(&set_order, &order_params),
        transaction.execute(&set_payment, &payment_params),
    )?;
    if restock {
        let put_back = transaction
            .prepare_cached(
                "UPDATE public.widgets SET inventory_level = inventory_level + $2 WHERE id = $1",
            )
            .await?;
        transaction
            .execute(&put_back, &[&widget_id, &quantity])
            .await?;
    }
    let detail = transaction.prepare_cached(&DETAIL_QUERY).await?;
    let row = transaction.query_one(&detail, &[&id]).await?;
    let detail = detail_from_row(&row)?;
    transaction.commit().await?;
    tracing::info!(
        order_id = id,
        status,
        user_id = user.id,
        "order status changed"
    );
    Ok(Json(detail))
}
