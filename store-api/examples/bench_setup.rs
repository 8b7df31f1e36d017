//! Prepares `make bench`'s store-api comparison (run by store-api/bench/run.sh): provisions a
//! tenant with the project's own tenancy code on the server the `PG*` variables name (as
//! superuser), adds an admin login role, seeds widgets and customers, signs a bench user in, and
//! writes pgbench scripts made of the very statements store-api runs for `GET /api/widgets/{id}`
//! and `POST /api/orders`.
//!
//! Usage: `bench_setup OUT_DIR [WIDGETS] [CUSTOMERS]`. Prints `export NAME='value'` lines.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

use store_api::auth::{hash_password, new_token, token_hash};
use store_api::model::{CUSTOMER_COLUMNS, WIDGET_COLUMNS};
use store_api::routes::orders::place_for_customer;
use store_api::routes::widgets::SELECT_ONE;
use usualstore_tenancy::Server;

use bench_support::BenchTenant;

mod bench_support;

/// pgbench's side of the orders comparison: the naive statement sequence an order takes without
/// any round-trip work, one statement per step (what store-api itself ran before it placed an
/// order in one statement). Kept here, frozen, so that the baseline stays what it always was.
///
/// The token lookup every authenticated request needs ($1 the token's SHA-256).
const NAIVE_TOKEN_LOOKUP: &str = "SELECT u.id, u.email, u.role, t.expiry > now() AS live \
     FROM public.tokens t JOIN public.users u ON u.id = t.user_id WHERE t.token_hash = $1";

/// The customer, by id ($1).
fn naive_customer_by_id() -> String {
    format!("SELECT {CUSTOMER_COLUMNS} FROM public.customers WHERE id = $1")
}

/// The stock decrement ($1 widget id, $2 quantity).
fn naive_take_stock() -> String {
    format!(
        "UPDATE public.widgets SET inventory_level = inventory_level - $2 \
         WHERE id = $1 AND inventory_level >= $2 RETURNING {WIDGET_COLUMNS}"
    )
}

/// The payment and the order: $1 amount, $2 currency, $3 last four, $4 bank return code, $5
/// expiry month, $6 expiry year, $7 payment intent, $8 payment method, $9 payment status name,
/// $10 widget id, $11 order status name, $12 customer id, $13 quantity.
const NAIVE_INSERT_ORDER: &str = "WITH t AS ( \
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

/// Every seeded widget costs this much, so an order of one is always this amount.
const PRICE_CENTS: i64 = 1000;

/// `$1`… → `:name`, highest number first so `$1` does not eat the front of `$13`.
fn with_variables(sql: &str, names: &[&str]) -> String {
    let mut out = sql.to_owned();
    for (index, name) in names.iter().enumerate().rev() {
        out = out.replace(&format!("${}", index + 1), &format!(":{name}"));
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out_dir = PathBuf::from(
        args.next()
            .ok_or("usage: bench_setup OUT_DIR [WIDGETS] [CUSTOMERS] [ORDERS]")?,
    );
    let widgets: i64 = args.next().map_or(Ok(1000), |v| v.parse())?;
    let customers: i64 = args.next().map_or(Ok(1000), |v| v.parse())?;
    let orders: i64 = args.next().map_or(Ok(10_000), |v| v.parse())?;

    let (admin_config, host, port) = bench_support::admin_config()?;
    let server = Server::without_tls(admin_config.clone());
    let (maintenance, connection) = admin_config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);

    let database = format!("bench_{}", std::process::id());
    let tenant_name = "Bench Shop";
    let BenchTenant {
        login,
        password: login_password,
        client: tenant,
    } = bench_support::create_bench_tenant(
        &server,
        &admin_config,
        &maintenance,
        &database,
        tenant_name,
        widgets,
        PRICE_CENTS,
    )
    .await?;
    tenant
        .execute(
            "INSERT INTO public.customers (first_name, last_name, email) \
             SELECT 'First' || n, 'Last' || n, 'customer' || n || '@example.com' \
             FROM generate_series(1, $1::bigint) n",
            &[&customers],
        )
        .await?;
    let user_id: i64 = tenant
        .query_one(
            "WITH u AS (INSERT INTO public.users (first_name, last_name, email, role) \
             VALUES ('Bench', 'Admin', 'bench@example.com', 'admin') RETURNING id), \
             c AS (INSERT INTO public.user_credentials (user_id, password_hash) \
             SELECT id, $1 FROM u) SELECT id FROM u",
            &[&hash_password("bench password 1")?],
        )
        .await?
        .get(0);
    let token = new_token();
    let hash = token_hash(&token);
    tenant
        .execute(
            "INSERT INTO public.tokens (user_id, name, email, token_hash, expiry) \
             VALUES ($1, 'Bench Admin', 'bench@example.com', $2, now() + interval '1 day')",
            &[&user_id, &&hash[..]],
        )
        .await?;
    // A shop with a history of orders, as any shop has. Against empty tables, the foreign-key
    // checks a session's first orders plan (cached for the session's life) scan the payments and
    // orders tables, and every order after costs more as they grow: the pool store-api opens first
    // would pay for it and pgbench's later sessions would not.
    tenant
        .execute(
            "WITH t AS (INSERT INTO public.transactions (amount_cents, currency, last_four, \
                 bank_return_code, expiry_month, expiry_year, payment_intent, payment_method, \
                 transaction_status_id) \
             SELECT $4, 'USD', '4242', '00', 12, 2030, 'pi_history', 'card', \
                 (SELECT id FROM public.transaction_statuses WHERE name = 'Cleared') \
             FROM generate_series(1, $1::bigint) RETURNING id, amount_cents) \
             INSERT INTO public.orders (widget_id, transaction_id, status_id, customer_id, \
                 quantity, amount_cents) \
             SELECT 1 + t.id % $2::bigint, t.id, \
                 (SELECT id FROM public.statuses WHERE name = 'Cleared'), \
                 1 + t.id % $3::bigint, 1, t.amount_cents \
             FROM t",
            &[&orders, &widgets, &customers, &PRICE_CENTS],
        )
        .await?;
    tenant.batch_execute("VACUUM ANALYZE").await?;

    std::fs::create_dir_all(&out_dir)?;
    let reads = format!(
        "\\set id random(1, {widgets})\n{};\n",
        with_variables(SELECT_ONE, &["id"])
    );
    std::fs::write(out_dir.join("pgbench-reads.sql"), reads)?;

    let mut orders = String::new();
    writeln!(orders, "\\set wid random(1, {widgets})")?;
    writeln!(orders, "\\set cid random(1, {customers})")?;
    writeln!(orders, "\\set qty 1")?;
    writeln!(orders, "\\set amount {PRICE_CENTS}")?;
    writeln!(orders, "\\set month 12")?;
    writeln!(orders, "\\set year 2030")?;
    writeln!(
        orders,
        "{};",
        with_variables(NAIVE_TOKEN_LOOKUP, &["tokenhash"])
    )?;
    writeln!(orders, "BEGIN;")?;
    writeln!(
        orders,
        "{};",
        with_variables(&naive_customer_by_id(), &["cid"])
    )?;
    writeln!(
        orders,
        "{};",
        with_variables(&naive_take_stock(), &["wid", "qty"])
    )?;
    writeln!(
        orders,
        "{};",
        with_variables(
            NAIVE_INSERT_ORDER,
            &[
                "amount",
                "currency",
                "lastfour",
                "returncode",
                "month",
                "year",
                "intent",
                "method",
                "paystatus",
                "wid",
                "orderstatus",
                "cid",
                "qty",
            ]
        )
    )?;
    writeln!(orders, "COMMIT;")?;
    std::fs::write(out_dir.join("pgbench-orders.sql"), orders)?;

    // An extra, faster baseline: store-api's own order statement (one round trip), run directly.
    let mut one = String::new();
    writeln!(one, "\\set wid random(1, {widgets})")?;
    writeln!(one, "\\set cid random(1, {customers})")?;
    writeln!(one, "\\set qty 1")?;
    writeln!(one, "\\set amount {PRICE_CENTS}")?;
    writeln!(one, "\\set month 12")?;
    writeln!(one, "\\set year 2030")?;
    writeln!(one, "\\set left 15")?;
    writeln!(
        one,
        "{};",
        with_variables(
            place_for_customer(),
            &[
                "wid",
                "qty",
                "amount",
                "currency",
                "lastfour",
                "returncode",
                "month",
                "year",
                "intent",
                "method",
                "paystatus",
                "orderstatus",
                "left",
                "cid",
            ]
        )
    )?;
    std::fs::write(out_dir.join("pgbench-orders-one.sql"), one)?;
    // pgbench's \set takes numbers only; strings come in as -D definitions.
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let defines = [
        format!("tokenhash=\\x{hex}"),
        "currency=USD".to_owned(),
        "lastfour=4242".to_owned(),
        "returncode=00".to_owned(),
        "intent=pi_bench".to_owned(),
        "method=card".to_owned(),
        "paystatus=Cleared".to_owned(),
        "orderstatus=Cleared".to_owned(),
    ];
    std::fs::write(
        out_dir.join("pgbench-orders.defines"),
        defines.join("\n") + "\n",
    )?;

    let dsn = format!(
        "host='{host}' port='{port}' user='{login}' password='{login_password}' dbname='{database}' sslmode='disable'"
    );
    for (name, value) in [
        ("BENCH_DSN", dsn.as_str()),
        ("BENCH_TENANT", tenant_name),
        ("BENCH_DATABASE", database.as_str()),
        ("BENCH_LOGIN", login.as_str()),
        ("BENCH_LOGIN_PASSWORD", login_password.as_str()),
        ("BENCH_TOKEN", token.as_str()),
        ("BENCH_WIDGETS", &widgets.to_string()),
        ("BENCH_CUSTOMERS", &customers.to_string()),
    ] {
        println!("export {name}='{}'", value.replace('\'', r"'\''"));
    }
    Ok(())
}
