//! `store-api`: serves one tenant's store over HTTP, or many by host name. See the crate README
//! for settings.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use std::sync::atomic::Ordering;

use store_api::cli::{self, CliError};
use store_api::config::ConnectionLimits;
use store_api::{AppState, Config, Listener, Registry, logging};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("user") => match cli::user(&args[1..]) {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(CliError::Usage(message)) => {
                eprintln!("store-api: {message}");
                ExitCode::from(2)
            }
            Err(error) => {
                eprintln!("store-api: {error}");
                ExitCode::FAILURE
            }
        },
        Some("healthcheck") => {
            if cli::healthcheck() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("-h" | "--help" | "help") => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("store-api {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("store-api: unknown command {other:?}\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    // One line naming the setting, before anything else is printed.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("store-api: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    store_api::auth::return_large_allocations();
    // Dropped at the end of this function: the last lines are written out.
    let _log = logging::init(config.log_format, config.log_level.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("store-api: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "store-api stopped");
            eprintln!("store-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let registry = Registry::new(&config)?;
    let address = (config.host, config.port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("API_PORT: cannot listen on {}:{}", config.host, config.port))?;
    let ops_listener = match config.ops_addr {
        Some(ops) => Some(
            TcpListener::bind(ops)
                .await
                .with_context(|| format!("OPS_ADDR: cannot listen on {ops}"))?,
        ),
        None => None,
    };
    let mut limits = config.connection_limits();
    let database_files = config.db_max_connections() as u64;
    if config.max_connections.is_some()
        && let Some(files) = store_api::config::open_file_limit()
        && (limits.max_connections as u64).saturating_add(64 + database_files) > files
    {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_file_limit = files,
            "MAX_CONNECTIONS leaves too few file descriptors for the pool and the log; \
             a connection flood could exhaust them (raise the open-file limit or lower it)"
        );
    }
    limits.max_connections = limits.max_connections.max(1);
    registry
        .process()
        .stats
        .max_connections
        .store(limits.max_connections as u64, Ordering::Relaxed);
    let tenants = registry.tenants();
    tracing::info!(
        tenant = registry.single().map(|state| state.tenant.get().to_string()),
        tenants = registry.is_router().then_some(tenants.len()),
        database = config.database.as_ref().map(|database| database.describe()),
        sslmode = config.database.as_ref().map(|database| database.connector.mode().to_string()),
        address = %listener.local_addr()?,
        ops_address = ops_listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()),
        pool_size = config.pool_size,
        db_max_connections = config.db_max_connections(),
        max_connections = limits.max_connections,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        keep_alive_timeout_ms = limits.keep_alive_timeout.as_millis() as u64,
        password_hash_concurrency = config.hash_concurrency,
        "store-api listening"
    );
    match registry.single() {
        Some(state) => check_database(&state).await,
        None => {
            for (state, hosts) in &tenants {
                tracing::info!(tenant = %state.tenant.get(), hosts = hosts.join(" "), "serving tenant");
            }
            if let Some(path) = config.tenants_file.clone() {
                reload_on_change(registry.clone(), path);
            }
        }
    }
    let drain = config.request_timeout + Duration::from_secs(5);
    let mut listeners = vec![Listener {
        tcp: listener,
        router: store_api::router(registry.clone()),
        limits,
        stats: registry.process().stats.connections.clone(),
        name: "api",
    }];
    if let Some(tcp) = ops_listener {
        listeners.push(Listener {
            tcp,
            router: store_api::ops_router(registry.clone()),
            limits: ConnectionLimits {
                max_connections: OPS_MAX_CONNECTIONS,
                ..limits
            },
            stats: Default::default(),
            name: "ops",
        });
    }
    store_api::serve(listeners, shutdown_signal(), drain).await?;
    for (state, _) in registry.tenants() {
        state.listener.stop();
        state.pool.close();
    }
    tracing::info!("store-api stopped");
    Ok(())
}

/// Probes and scrapers need few connections; a separate budget keeps them answered while the
/// API's connections are all taken.
const OPS_MAX_CONNECTIONS: usize = 32;

/// Says early whether a single tenant's database is there; serving starts either way (readyz
/// tells).
async fn check_database(state: &AppState) {
    match state.pool.get().await {
        Ok(client) => {
            store_api::registry::fit_pool_to_connection_limit(state, &client).await;
            if let Err(error) = state.tenant.read(&client).await {
                tracing::debug!(%error, "cannot read the tenant name");
            }
            match usualstore_schema::applied_version(&client).await {
                Ok(version) if version >= store_api::NEEDED_SCHEMA_VERSION => {
                    tracing::info!(schema_version = version, tenant = %state.tenant.get(), "database reachable");
                }
                Ok(version) => tracing::warn!(
                    schema_version = version,
                    needed = store_api::NEEDED_SCHEMA_VERSION,
                    "the database schema is older than this build needs; /readyz reports 503"
                ),
                Err(error) => tracing::warn!(%error, "cannot read the schema version"),
            }
        }
        Err(error) => tracing::warn!(
            error = %store_api::error::ApiError::from(error).message,
            "database not reachable yet; requests get 503 until it is"
        ),
    }
    state.tenant.learn_in_background(state.pool.clone());
}

/// How often the tenants file is looked at for a change (its size and modification time).
const FILE_POLL: Duration = Duration::from_secs(2);

/// Reloads the tenants file on SIGHUP and when it changes. A refused file is logged and the
/// map in use keeps serving.
fn reload_on_change(registry: std::sync::Arc<Registry>, path: String) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP; the tenants file reloads only when it changes");
            None
        }
    };
    tokio::spawn(async move {
        let stamp = |path: &str| {
            std::fs::metadata(path)
                .ok()
                .map(|meta| (meta.len(), meta.modified().ok()))
        };
        let mut seen = stamp(&path);
        let mut poll = tokio::time::interval(FILE_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(hangup) => hangup.recv().await,
                        None => std::future::pending().await,
                    }
                } => "SIGHUP",
                _ = poll.tick() => {
                    let now = stamp(&path);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "the file changed"
                }
            };
            tracing::info!(reason = why, "reloading TENANTS_FILE");
            if let Err(error) = registry.reload() {
                tracing::error!(
                    error = %store_api::registry::describe_refusal(&error),
                    "TENANTS_FILE refused; the tenants already loaded keep being served"
                );
            }
        }
    });
}

/// SIGTERM (docker stop, Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (terminate, interrupt) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::error!("cannot listen for signals; stop the process with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
