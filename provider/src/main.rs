//! terraform-provider-usualstore: a Terraform provider (plugin protocol 6) for database-per-tenant PostgreSQL.

mod check;
mod config;
mod connect;
mod data_sources;
mod diagnostics;
mod dsn;
mod ephemeral;
mod logging;
mod model;
mod plugin;
mod proto;
mod provider;
mod resources;
mod schema;

use std::process::ExitCode;

use plugin::handshake;
use plugin::server::{self, ShutdownSignal};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("check") {
        return check::run(&args[1..]);
    }
    // Checked before anything else so that a person running the binary by hand gets a plain answer on stderr
    // and nothing is written to stdout.
    let request = match handshake::read_request(|key| std::env::var(key).ok()) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    logging::init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(server::serve(
        request,
        provider::UsualstoreProvider::new(),
        ShutdownSignal::new(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin server stopped with an error");
            eprintln!("terraform-provider-usualstore: {e}");
            ExitCode::from(1)
        }
    }
}
