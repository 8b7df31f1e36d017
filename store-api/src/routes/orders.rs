//! Orders: placing one is a single database transaction (payment row, order row, stock
//! decrement), so a failure at any step leaves nothing behind.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Id};
use crate::model::{
    CUSTOMER_COLUMNS, Customer, List, Order, OrderDetail, PageParams, Transaction, WIDGET_COLUMNS,
    Widget,
};
use crate::routes::created;
use crate::routes::customers::{NewCustomer, find_or_add};

/// One order of a widget cannot exceed this many units.
pub const MAX_QUANTITY: i32 = 10_000;
const MAX_PAYMENT_TEXT: usize = 255;
/// Order status of a newly placed order.
const PLACED: &str = "Cleared";
/// Payment statuses a new order may start with.
const PAYMENT_STATUSES_AT_CHECKOUT: [&str; 2] = ["Cleared", "Pending"];

const ORDER_COLUMNS: &str = "o.id, o.widget_id, o.customer_id, o.transaction_id, s.name AS status, \
                             o.quantity, o.amount_cents, o.created_at, o.updated_at";

#[derive(Debug, Deserialize)]
pub struct OrderQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    /// An order status name (`Cleared`, `Refunded`, `Cancelled`), any case.
    status: Option<String>,
    customer_id: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> ApiResult<Json<List<Order>>> {
    let page = PageParams {
        limit: query.limit,
        offset: query.offset,
    }
    .page()?;
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
             ORDER BY o.created_at DESC, o.id DESC LIMIT $3 OFFSET $4"
        ))
        .await?;
    let count = client
        .prepare_cached(&format!(
            "SELECT count(*) FROM public.orders o \
             JOIN public.statuses s ON s.id = o.status_id WHERE {filter}"
        ))
        .await?;
    let select_params: [&(dyn ToSql + Sync); 4] =
        [&status, &query.customer_id, &page.limit, &page.offset];
    let count_params: [&(dyn ToSql + Sync); 2] = [&status, &query.customer_id];
    let (rows, total) = tokio::try_join!(
        client.query(&select, &select_params),
        client.query_one(&count, &count_params),
    )?;
    let items = rows.iter().map(Order::from_row).collect::<Result<_, _>>()?;
    Ok(Json(List {
        tenant: state.tenant.to_string(),
        items,
        total: total.try_get(0)?,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// An order with its widget (`w_…`), customer (`c_…`) and transaction (`t_…`) in one row.
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

pub async fn get(
    State(state): State<AppState>,
    _user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<OrderDetail>> {
    let client = state.pool.get().await?;
    let statement = client.prepare_cached(&detail_query()).await?;
    let row = client
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    Ok(Json(detail_from_row(&row)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    widget_id: i64,
    quantity: i32,
    /// An existing customer…
    customer_id: Option<i64>,
    /// …or one found by email, and added if new.
    customer: Option<NewCustomer>,
    payment: Payment,
}

/// What the transactions table records about the payment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// ISO 4217 code, e.g. `EUR`.
    currency: String,
    /// When given, must equal price × quantity: the client's idea of the price is stale otherwise.
    amount_cents: Option<i64>,
    last_four: Option<String>,
    bank_return_code: Option<String>,
    expiry_month: Option<i32>,
    expiry_year: Option<i32>,
    payment_intent: Option<String>,
    payment_method: Option<String>,
    /// `Cleared` (default) or `Pending`.
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

/// `POST /api/orders`, step 1 when the buyer is given by id ($1 customer id).
pub fn customer_by_id() -> String {
    format!("SELECT {CUSTOMER_COLUMNS} FROM public.customers WHERE id = $1")
}

/// Step 2: $1 widget id, $2 quantity. The row lock taken here serializes concurrent orders of
/// one widget; the condition is re-checked against the latest stock, so it never goes negative.
pub fn take_stock() -> String {
    format!(
        "UPDATE public.widgets SET inventory_level = inventory_level - $2 \
         WHERE id = $1 AND inventory_level >= $2 RETURNING {WIDGET_COLUMNS}"
    )
}

/// Step 3: the payment and the order in one statement; returns the row [`detail_from_row`] reads,
/// less the widget and customer columns the caller already has. Parameters: $1 amount, $2
/// currency, $3 last four, $4 bank return code, $5 expiry month, $6 expiry year, $7 payment
/// intent, $8 payment method, $9 payment status name, $10 widget id, $11 order status name,
/// $12 customer id, $13 quantity.
pub const INSERT_ORDER: &str = "WITH t AS ( \
        INSERT INTO public.transactions (amount_cents, currency, last_four, bank_return_code, \
            expiry_month, expiry_year, payment_intent, payment_method, transaction_status_id) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
            (SELECT id FROM public.transaction_statuses WHERE name = $9)) \
        RETURNING * \
    ), o AS ( \
        INSERT INTO public.orders (widget_id, transaction_id, status_id, customer_id, quantity, \
            amount_cents) \
        SELECT $10::bigint, t.id, (SELECT id FROM public.statuses WHERE name = $11), \
            $12::bigint, $13::integer, t.amount_cents FROM t \
        RETURNING * \
    ) \
    SELECT o.id, o.widget_id, o.customer_id, o.transaction_id, $11::text AS status, o.quantity, \
        o.amount_cents, o.created_at, o.updated_at, \
        t.id AS t_id, t.amount_cents AS t_amount_cents, t.currency AS t_currency, \
        t.last_four AS t_last_four, t.bank_return_code AS t_bank_return_code, \
        t.expiry_month AS t_expiry_month, t.expiry_year AS t_expiry_year, \
        t.payment_intent AS t_payment_intent, t.payment_method AS t_payment_method, \
        $9::text AS t_status, t.created_at AS t_created_at, t.updated_at AS t_updated_at \
    FROM o JOIN t ON t.id = o.transaction_id";

pub async fn place(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<PlaceOrder>,
) -> ApiResult<Response> {
    user.require_writer("placing orders")?;
    let (buyer, payment) = check(&body)?;
    let mut client = state.pool.get().await?;
    // Dropping the transaction on any early return rolls it back: nothing is half-written.
    let transaction = client.transaction().await?;

    let take_stock = transaction.prepare_cached(&take_stock()).await?;
    let stock_params: [&(dyn ToSql + Sync); 2] = [&body.widget_id, &body.quantity];
    let (customer, widget_row) = match &buyer {
        // Independent statements: sent together, so the transaction (and the widget's row
        // lock) lasts one round trip less. On a missing customer the stock change is rolled
        // back with the rest.
        Buyer::Existing(id) => {
            let statement = transaction.prepare_cached(&customer_by_id()).await?;
            let customer_params: [&(dyn ToSql + Sync); 1] = [id];
            let (customer, widget_row) = tokio::try_join!(
                transaction.query_opt(&statement, &customer_params),
                transaction.query_opt(&take_stock, &stock_params),
            )?;
            let customer = customer
                .ok_or_else(|| ApiError::not_found("customer", *id).with_field("customer_id"))?;
            (Customer::from_row(&customer, "")?, widget_row)
        }
        Buyer::New(new) => {
            let customer = find_or_add(&transaction, new).await?;
            let widget_row = transaction.query_opt(&take_stock, &stock_params).await?;
            (customer, widget_row)
        }
    };

    let Some(widget_row) = widget_row else {
        let stock = transaction
            .prepare_cached("SELECT inventory_level FROM public.widgets WHERE id = $1")
            .await?;
        return Err(
            match transaction.query_opt(&stock, &[&body.widget_id]).await? {
                None => ApiError::not_found("widget", body.widget_id).with_field("widget_id"),
                Some(row) => ApiError::conflict(
                    "insufficient_stock",
                    format!(
                        "widget {} has {} in stock; {} ordered",
                        body.widget_id,
                        row.try_get::<_, i32>(0)?,
                        body.quantity
                    ),
                ),
            },
        );
    };
    let widget = Widget::from_plain_row(&widget_row)?;

    let amount = widget
        .price_cents
        .checked_mul(i64::from(body.quantity))
        .ok_or_else(|| ApiError::invalid("quantity", "the order's total is too large"))?;
    if let Some(expected) = body.payment.amount_cents
        && expected != amount
    {
        return Err(ApiError::conflict(
            "amount_mismatch",
            format!(
                "payment.amount_cents is {expected} but {} × {} cents is {amount}",
                body.quantity, widget.price_cents
            ),
        )
        .with_field("payment.amount_cents"));
    }

    let insert = transaction.prepare_cached(INSERT_ORDER).await?;
    let p = &body.payment;
    let row = transaction
        .query_one(
            &insert,
            &[
                &amount,
                &payment.currency,
                &p.last_four,
                &p.bank_return_code,
                &p.expiry_month,
                &p.expiry_year,
                &p.payment_intent,
                &p.payment_method,
                &payment.status,
                &body.widget_id,
                &PLACED,
                &customer.id,
                &body.quantity,
            ],
        )
        .await?;
    let order = Order::from_row(&row)?;
    let payment_row = Transaction::from_row(&row)?;
    transaction.commit().await?;

    tracing::info!(
        order_id = order.id,
        widget_id = widget.id,
        customer_id = customer.id,
        quantity = order.quantity,
        user_id = user.id,
        "order placed"
    );
    Ok(created(
        format!("/api/orders/{}", order.id),
        OrderDetail {
            order,
            widget,
            customer,
            transaction: payment_row,
        },
    ))
}

pub async fn refund(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<OrderDetail>> {
    user.require_writer("refunding orders")?;
    settle(&state, &user, id, "Refunded", false).await
}

/// Cancelling also puts the units back in stock: they never left.
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<OrderDetail>> {
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
    tokio::try_join!(
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
    let detail = transaction.prepare_cached(&detail_query()).await?;
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
