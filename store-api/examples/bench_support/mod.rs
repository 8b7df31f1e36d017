//! What both benchmark set-ups do the same way: reach the server the `PG*` variables name as
//! superuser, and make a bench tenant with the project's own tenancy code, an admin login and
//! its widgets.

use std::error::Error;

use tokio_postgres::Client;
use usualstore_tenancy::{
    RoleNames, Server, ServicePlan, TenantSpec, create_tenant, quote_ident, quote_literal,
};

/// The superuser's connection settings from `PGHOST`, `PGPORT`, `PGUSER` and `PGPASSWORD`, to
/// the `postgres` database; also the host and port, which the DSNs written out repeat.
pub fn admin_config() -> Result<(tokio_postgres::Config, String, u16), Box<dyn Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let host = env("PGHOST")?;
    let port: u16 = env("PGPORT")?.parse()?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .user(&env("PGUSER")?)
        .password(env("PGPASSWORD")?)
        .dbname("postgres");
    Ok((config, host, port))
}

/// A bench tenant: its login (`<database>_api`, in the admin group) and password, and a
/// superuser session in its database.
pub struct BenchTenant {
    pub login: String,
    pub password: String,
    pub client: Client,
}

/// Creates tenant `database` (Enterprise plan), its admin login through `maintenance`, and
/// `widgets` widgets at `price_cents` each with stock that never runs out.
pub async fn create_bench_tenant(
    server: &Server,
    admin_config: &tokio_postgres::Config,
    maintenance: &Client,
    database: &str,
    tenant_name: &str,
    widgets: i64,
    price_cents: i64,
) -> Result<BenchTenant, Box<dyn Error>> {
    create_tenant(
        server,
        &TenantSpec {
            database_name: database.to_owned(),
            tenant_name: tenant_name.to_owned(),
            plan: ServicePlan::Enterprise,
        },
    )
    .await?;
    let login = format!("{database}_api");
    let password = format!("pw{:016x}", rand::random::<u64>());
    let roles = RoleNames::for_database(database);
    maintenance
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}",
            quote_ident(&login),
            quote_literal(&password),
            quote_ident(&roles.admin)
        ))
        .await?;
    let mut tenant_config = admin_config.clone();
    tenant_config.dbname(database);
    let (client, connection) = tenant_config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO public.widgets (name, description, inventory_level, price_cents, image) \
             SELECT 'Widget ' || n, 'A widget for benchmarks', 100000000, $1, 'widget.png' \
             FROM generate_series(1, $2::bigint) n",
            &[&price_cents, &widgets],
        )
        .await?;
    Ok(BenchTenant {
        login,
        password,
        client,
    })
}
