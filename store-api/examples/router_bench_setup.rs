//! Prepares `make bench`'s router run (store-api/bench/run.sh): provisions `TENANTS` tenants with
//! the project's own tenancy code on the server the `PG*` variables name (as superuser), each
//! with an admin login role and `WIDGETS` widgets, and writes
//!
//! - `tenants.json`: host `t<n>.bench.test` ⇒ `{dsn, name}`, the shape of
//!   `terraform output -json store_api_tenants` (store-api's `TENANTS_FILE`);
//! - `router-reads.lua`: a wrk script spreading `GET /api/widgets/{id}` over every host.
//!
//! Usage: `router_bench_setup OUT_DIR [TENANTS] [WIDGETS]`. Prints `export NAME='value'` lines.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use usualstore_tenancy::Server;

use bench_support::BenchTenant;

mod bench_support;

/// Tenants provisioned at once: CREATE DATABASE serialises on the server anyway.
const AT_ONCE: usize = 4;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out_dir = PathBuf::from(
        args.next()
            .ok_or("usage: router_bench_setup OUT_DIR [TENANTS] [WIDGETS]")?,
    );
    let tenants: usize = args.next().map_or(Ok(100), |v| v.parse())?;
    let widgets: i64 = args.next().map_or(Ok(1000), |v| v.parse())?;

    let (admin_config, host, port) = bench_support::admin_config()?;
    let server = Server::without_tls(admin_config.clone());
    let (maintenance, connection) = admin_config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);

    let prefix = format!("rb{}", std::process::id());
    let mut file = Map::new();
    let mut hosts = Vec::with_capacity(tenants);
    for chunk in (0..tenants).collect::<Vec<_>>().chunks(AT_ONCE) {
        let mut created = Vec::new();
        for &n in chunk {
            let database = format!("{prefix}_{n}");
            let (server, admin_config, maintenance) = (&server, &admin_config, &maintenance);
            created.push(async move {
                let tenant = bench_support::create_bench_tenant(
                    server,
                    admin_config,
                    maintenance,
                    &database,
                    &format!("Bench Shop {n}"),
                    widgets,
                    1000,
                )
                .await?;
                tenant
                    .client
                    .batch_execute("VACUUM ANALYZE public.widgets")
                    .await?;
                Ok::<_, Box<dyn Error>>((n, database, tenant))
            });
        }
        for outcome in futures_util::future::join_all(created).await {
            let (
                n,
                database,
                BenchTenant {
                    login, password, ..
                },
            ) = outcome?;
            let name = format!("t{n}.bench.test");
            file.insert(
                name.clone(),
                json!({
                    "dsn": format!(
                        "host='{host}' port='{port}' user='{login}' password='{password}' dbname='{database}' sslmode='disable'"
                    ),
                    "name": format!("Bench Shop {n}"),
                }),
            );
            hosts.push(name);
        }
        eprintln!("    {} of {tenants} tenants provisioned", hosts.len());
    }

    std::fs::create_dir_all(&out_dir)?;
    let file_path = out_dir.join("tenants.json");
    std::fs::write(&file_path, Value::Object(file).to_string())?;
    let mut lua = String::from("local hosts = {\n");
    for name in &hosts {
        writeln!(lua, "  \"{name}\",")?;
    }
    write!(
        lua,
        "}}\nmath.randomseed(os.time() + 2)\n\
         request = function()\n  \
           local host = hosts[math.random(1, #hosts)]\n  \
           return wrk.format(\"GET\", \"/api/widgets/\" .. math.random(1, {widgets}), {{ [\"Host\"] = host }})\n\
         end\n"
    )?;
    let lua_path = out_dir.join("router-reads.lua");
    std::fs::write(&lua_path, lua)?;
    for (name, value) in [
        ("BENCH_ROUTER_FILE", file_path.display().to_string()),
        ("BENCH_ROUTER_LUA", lua_path.display().to_string()),
        (
            "BENCH_ROUTER_HOST",
            hosts.first().cloned().unwrap_or_default(),
        ),
    ] {
        println!("export {name}='{}'", value.replace('\'', r"'\''"));
    }
    Ok(())
}
