//! The embedded schema and the runner against a real PostgreSQL (usualstore-testpg), one fresh
//! database per test.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use usualstore_schema::{
    Migration, SchemaError, applied_version, apply_pending, latest_version, migrations,
};
use usualstore_testpg::{shared, unique_name};

const STORE_TABLES: [&str; 11] = [
    "customers",
    "widgets",
    "statuses",
    "transaction_statuses",
    "transactions",
    "orders",
    "users",
    "user_credentials",
    "tokens",
    "sessions",
    "usualstore_login_users",
];

async fn fresh_database() -> (String, Client) {
    let pg = shared();
    let db = unique_name("schema");
    pg.create_database(&db).await.unwrap();
    let client = pg.connect(&db).await.unwrap();
    (db, client)
}

fn all_versions() -> Vec<i32> {
    migrations().iter().map(|m| m.version).collect()
}

/// The embedded migrations plus `extra`.
fn with(extra: Migration) -> Vec<Migration> {
    let mut list = migrations().to_vec();
    list.push(extra);
    list
}

async fn table_exists(client: &Client, table: &str) -> bool {
    client
        .query_one(
            "select to_regclass('public.' || quote_ident($1)) is not null",
            &[&table],
        )
        .await
        .unwrap()
        .get(0)
}

async fn recorded_versions(client: &Client) -> Vec<i32> {
    client
        .query(
            "select version from public.usualstore_schema_migrations order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn names_in(client: &Client, table: &str) -> Vec<String> {
    client
        .query(&format!("select name from public.{table} order by id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn empty_database_gets_the_whole_schema() {
    let (_db, mut client) = fresh_database().await;
    assert_eq!(applied_version(&client).await.unwrap(), 0);

    let applied = apply_pending(&mut client, migrations()).await.unwrap();
    assert_eq!(applied, all_versions());
    assert_eq!(applied_version(&client).await.unwrap(), latest_version());

    for table in STORE_TABLES
        .into_iter()
        .chain(["usualstore_schema_migrations"])
    {
        assert!(table_exists(&client, table).await, "{table} is missing");
    }
    assert_eq!(
        names_in(&client, "statuses").await,
        ["Cleared", "Refunded", "Cancelled"]
    );
    assert_eq!(
        names_in(&client, "transaction_statuses").await,
        [
            "Pending",
            "Cleared",
            "Declined",
            "Refunded",
            "Partially refunded"
        ]
    );

    let recorded = client
        .query_one(
            "select name, checksum from public.usualstore_schema_migrations where version = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(recorded.get::<_, String>(0), migrations()[0].name);
    assert_eq!(recorded.get::<_, String>(1), migrations()[0].checksum());
}

#[tokio::test]
async fn every_table_with_updated_at_has_the_trigger_and_it_bumps_the_column() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();

    let untriggered: Vec<String> = client
        .query(
            "select c.table_name::text from information_schema.columns c
             where c.table_schema = 'public' and c.column_name = 'updated_at'
               and not exists (
                   select 1 from pg_trigger t
                   where t.tgrelid = ('public.' || quote_ident(c.table_name))::regclass
                     and t.tgfoid = 'public.set_updated_at()'::regprocedure
                     and not t.tgisinternal)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        untriggered.is_empty(),
        "no updated_at trigger on {untriggered:?}"
    );

    client
        .batch_execute(
            "insert into widgets (name, price_cents, created_at, updated_at)
             values ('Widget', 1000, '2000-01-01Z', '2000-01-01Z')",
        )
        .await
        .unwrap();
    client
        .batch_execute("update widgets set inventory_level = 5")
        .await
        .unwrap();
    let row = client
        .query_one(
            "select created_at = '2000-01-01Z', updated_at > now() - interval '1 minute'
             from widgets",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "created_at must not change");
    assert!(row.get::<_, bool>(1), "updated_at was not bumped");
}

#[tokio::test]
async fn every_foreign_key_is_indexed() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();
    let unindexed: Vec<String> = client
        .query(
            "select c.conrelid::regclass::text || '.' || c.conname from pg_constraint c
             where c.contype = 'f' and c.connamespace = 'public'::regnamespace
               and not exists (
                   select 1 from pg_index i
                   where i.indrelid = c.conrelid
                     and array(select unnest((i.indkey::int2[])[0:cardinality(c.conkey) - 1]))
                         = array(select unnest(c.conkey)))",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:?}"
    );
}

#[tokio::test]
async fn second_run_applies_nothing() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();
    let again = apply_pending(&mut client, migrations()).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(recorded_versions(&client).await, all_versions());
}

#[tokio::test]
async fn an_added_migration_is_the_only_one_applied() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();

    let list = with(Migration {
        version: 9999,
        name: "widgets_colour",
        sql: "alter table public.widgets add column colour text not null default 'blue'",
    });
    let applied = apply_pending(&mut client, &list).await.unwrap();
    assert_eq!(applied, [9999]);
    assert_eq!(applied_version(&client).await.unwrap(), 9999);
    client
        .batch_execute("insert into widgets (name, price_cents, colour) values ('w', 1, 'red')")
        .await
        .unwrap();
    assert!(apply_pending(&mut client, &list).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind() {
    let (_db, mut client) = fresh_database().await;
    // What an earlier run applied stays; this run goes as a whole.
    apply_pending(&mut client, &migrations()[..1])
        .await
        .unwrap();
    let list = with(Migration {
        version: 9998,
        name: "half_done",
        sql: "create table public.half_done (id integer);
              insert into public.half_done values (1);
              select 1 / 0;",
    });
    let error = apply_pending(&mut client, &list).await.unwrap_err();
    match &error {
        SchemaError::MigrationFailed {
            version,
            name,
            source,
        } => {
            assert_eq!((*version, *name), (9998, "half_done"));
            assert_eq!(source.code(), Some(&SqlState::DIVISION_BY_ZERO));
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(error.to_string().contains("9998"), "{error}");

    // Nothing of this run remains (not even the embedded migrations it would have applied
    // before the failing one), the earlier run's version stays, and the session is usable.
    assert!(!table_exists(&client, "half_done").await);
    assert!(!table_exists(&client, "user_credentials").await);
    assert_eq!(applied_version(&client).await.unwrap(), 1);
    assert_eq!(recorded_versions(&client).await, [1]);
    // Fixed, the next run applies everything pending.
    assert_eq!(
        apply_pending(&mut client, migrations()).await.unwrap(),
        all_versions()[1..]
    );
}

#[tokio::test]
async fn an_edited_released_migration_is_detected() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();

    let mut edited = migrations().to_vec();
    let original = edited[0].sql;
    edited[0].sql = Box::leak(format!("{original}\n-- a harmless-looking edit\n").into_boxed_str());
    let error = apply_pending(&mut client, &edited).await.unwrap_err();
    assert!(
        matches!(error, SchemaError::ChecksumMismatch { version: 1, .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runners_apply_each_migration_once() {
    let (db, mut first) = fresh_database().await;
    let mut second = shared().connect(&db).await.unwrap();
    let list = with(Migration {
        version: 9999,
        name: "slow",
        // Holds the lock long enough for the other runner to queue behind it.
        sql: "select pg_sleep(0.2); create table public.slow_marker (id integer);",
    });

    let (a, b) = tokio::join!(
        apply_pending(&mut first, &list),
        apply_pending(&mut second, &list)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut together: Vec<i32> = a.iter().chain(&b).copied().collect();
    together.sort_unstable();
    let expected: Vec<i32> = list.iter().map(|m| m.version).collect();
    assert_eq!(together, expected, "first applied {a:?}, second {b:?}");
    assert_eq!(recorded_versions(&first).await, expected);
}

#[tokio::test]
async fn a_newer_database_is_refused() {
    let (_db, mut client) = fresh_database().await;
    let newer = with(Migration {
        version: 9999,
        name: "from_the_future",
        sql: "create table public.future (id integer)",
    });
    apply_pending(&mut client, &newer).await.unwrap();

    let error = apply_pending(&mut client, migrations()).await.unwrap_err();
    assert!(
        matches!(
            error,
            SchemaError::DatabaseNewer { database_version: 9999, latest_known } if latest_known == latest_version()
        ),
        "{error}"
    );
    assert_eq!(applied_version(&client).await.unwrap(), 9999);
}

#[tokio::test]
async fn runs_as_the_role_set_by_the_caller() {
    let pg = shared();
    let db = unique_name("owned");
    let owner = format!("{db}_owner");
    let admin = pg.connect("postgres").await.unwrap();
    admin
        .batch_execute(&format!("create role {owner} nologin"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("create database {db} owner {owner}"))
        .await
        .unwrap();
    let mut client = pg.connect(&db).await.unwrap();
    client
        .batch_execute(&format!("set role {owner}"))
        .await
        .unwrap();

    apply_pending(&mut client, migrations()).await.unwrap();

    let current: String = client
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        current, owner,
        "the runner must leave the caller's role alone"
    );
    let foreign: Vec<String> = client
        .query(
            "select c.relname::text from pg_class c
             where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'i', 'S')
               and pg_get_userbyid(c.relowner) <> $1
             union all
             select p.proname::text from pg_proc p
             where p.pronamespace = 'public'::regnamespace and pg_get_userbyid(p.proowner) <> $1",
            &[&owner],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(foreign.is_empty(), "not owned by {owner}: {foreign:?}");
}

/// Inserts a widget, customer, transaction and an order of them; returns their ids.
async fn place_order(client: &Client) -> (i64, i64, i64) {
    let row = client
        .query_one(
            "with w as (insert into widgets (name, price_cents) values ('Widget', 1000) returning id),
                  c as (insert into customers (first_name, last_name, email)
                        values ('Ada', 'Lovelace', 'ada@example.com') returning id),
                  t as (insert into transactions (amount_cents, currency, transaction_status_id)
                        select 2000, 'usd', id from transaction_statuses where name = 'Cleared'
                        returning id),
                  o as (insert into orders (widget_id, transaction_id, status_id, customer_id,
                                            quantity, amount_cents)
                        select w.id, t.id, s.id, c.id, 2, 2000
                        from w, t, c, statuses s where s.name = 'Cleared'
                        returning id)
             select (select id from w), (select id from c), (select id from o)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn orders_keep_their_widgets_and_customers() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();
    let (widget, customer, _order) = place_order(&client).await;

    for (table, id) in [("widgets", widget), ("customers", customer)] {
        let error = client
            .execute(&format!("delete from {table} where id = $1"), &[&id])
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::FOREIGN_KEY_VIOLATION),
            "{table}"
        );
    }
    let orders: i64 = client
        .query_one("select count(*) from orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 1);
}

#[tokio::test]
async fn constraints_reject_bad_rows() {
    let (_db, mut client) = fresh_database().await;
    apply_pending(&mut client, migrations()).await.unwrap();
    place_order(&client).await;

    for (statement, expected) in [
        (
            "insert into widgets (name, price_cents) values ('w', -1)",
            SqlState::CHECK_VIOLATION,
        ),
        (
            "insert into widgets (name, price_cents, inventory_level) values ('w', 1, -1)",
            SqlState::CHECK_VIOLATION,
        ),
        ("update orders set quantity = 0", SqlState::CHECK_VIOLATION),
        (
            "insert into customers (first_name, last_name, email) values ('A', 'L', 'ADA@example.com')",
            SqlState::UNIQUE_VIOLATION,
        ),
        (
            "insert into users (first_name, last_name, email, role)
             values ('R', 'U', 'root@example.com', 'root')",
            SqlState::CHECK_VIOLATION,
        ),
        (
            "insert into user_credentials (user_id, password_hash) values (424242, 'x')",
            SqlState::FOREIGN_KEY_VIOLATION,
        ),
        (
            "insert into widgets (id, name, price_cents) values (42, 'w', 1)",
            SqlState::GENERATED_ALWAYS,
        ),
    ] {
        let error = client.batch_execute(statement).await.unwrap_err();
        assert_eq!(error.code(), Some(&expected), "{statement}: {error:?}");
    }

    // Users' emails are unique regardless of case; deleting a user deletes their credentials and
    // tokens.
    client
        .batch_execute(
            "insert into users (first_name, last_name, email, role)
             values ('A', 'D', 'admin@example.com', 'admin');
             insert into user_credentials (user_id, password_hash) select id, 'hash' from users;
             insert into tokens (user_id, name, email, token_hash, expiry)
             select id, 'A', email, '\\x0102', now() + interval '1 day' from users;",
        )
        .await
        .unwrap();
    let duplicate = client
        .batch_execute(
            "insert into users (first_name, last_name, email, role)
             values ('B', 'D', 'Admin@Example.com', 'developer')",
        )
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Some(&SqlState::UNIQUE_VIOLATION));
    client.batch_execute("delete from users").await.unwrap();
    let left: i64 = client
        .query_one(
            "select (select count(*) from tokens) + (select count(*) from user_credentials)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn password_hashes_move_out_of_users_with_their_rows() {
    let (_db, mut client) = fresh_database().await;
    let first = &migrations()[..1];
    apply_pending(&mut client, first).await.unwrap();
    client
        .batch_execute(
            "insert into users (first_name, last_name, email, password_hash, role)
             values ('A', 'D', 'a@example.com', '$argon2id$a', 'admin'),
                    ('B', 'D', 'b@example.com', '$argon2id$b', 'customer')",
        )
        .await
        .unwrap();
    apply_pending(&mut client, migrations()).await.unwrap();
    let moved: Vec<(String, String)> = client
        .query(
            "select u.email, c.password_hash from users u
             join user_credentials c on c.user_id = u.id order by u.email",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        moved,
        [
            ("a@example.com".to_owned(), "$argon2id$a".to_owned()),
            ("b@example.com".to_owned(), "$argon2id$b".to_owned())
        ]
    );
    let left: i64 = client
        .query_one(
            "select count(*) from information_schema.columns
             where table_schema = 'public' and table_name = 'users' and column_name = 'password_hash'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "users keeps no password hash");
}
