//! Throwaway PostgreSQL clusters for the project's tests.
//!
//! Every integration test that needs PostgreSQL uses this crate instead of an external server:
//! it runs `initdb` into a fresh temporary directory and starts the server on a free port of
//! `127.0.0.1`, tuned for speed (no fsync) and with password authentication everywhere, so tests
//! can check that tenant A's users are refused by tenant B's database.
//!
//! # Quick start
//!
//! ```no_run
//! use usualstore_testpg::{shared, unique_name};
//!
//! // Inside a #[tokio::test] (any runtime flavour):
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let pg = shared(); // one cluster per test process, started on first use
//! let db = unique_name("shop"); // e.g. "shop_1a2b_0": fresh per call
//! pg.create_database(&db).await?;
//! let admin = pg.connect(&db).await?; // superuser; the connection task is spawned for you
//! admin.batch_execute("CREATE ROLE alice LOGIN PASSWORD 'secret'").await?;
//! let alice = pg.connect_as(&db, "alice", "secret").await?;
//! # drop(alice);
//! # Ok(())
//! # }
//! ```
//!
//! Child processes (Terraform acceptance tests, `psql`) get the superuser connection through
//! [`Cluster::pg_env`]; a managed-PostgreSQL-style administrator (no superuser, `CREATEDB
//! CREATEROLE`) comes from [`Cluster::create_managed_admin`].
//!
//! # Which cluster
//!
//! - [`shared()`]: started lazily by the first caller, then shared by every test in the process
//!   (safe from parallel test threads). Isolate tests by giving each its own database and role
//!   names from [`unique_name`]; never stop or restart it.
//! - [`Cluster::start()`]: a private cluster for tests that stop, restart or kill the server.
//!   Dropping it stops the server and deletes its directory.
//!
//! Either way a detached watchdog process stops the server and deletes the directory once the
//! test process has exited (test binaries never run static destructors and may be killed).
//!
//! # Requirements and environment
//!
//! PostgreSQL's server binaries must be installed (`apt-get install postgresql`); they are looked
//! up in `$USUALSTORE_PG_BIN`, then `pg_config --bindir`, then the highest
//! `/usr/lib/postgresql/*/bin`, then `PATH`. When tests run as root (CI), `initdb` and the server
//! run as the `postgres` system user (or `$USUALSTORE_PG_USER`) through `runuser`.
//! The temporary directory comes from `$TMPDIR` (default `/tmp`); under root it must be
//! reachable by that user.
//!
//! Each cluster listens on `127.0.0.1:<free port>` only, allows 400 connections, and logs to
//! `server.log` in its [data directory](Cluster::data_dir); a start failure quotes that log.
//!
//! The binary `testpg` starts a cluster for manual use and prints `export PG…=…` lines; it stops
//! the cluster when its stdin closes or on SIGTERM/SIGINT (`--ignore-stdin`: signals only).

mod binaries;
mod cluster;
mod error;
mod names;
mod os_user;
mod server;
mod watchdog;

use std::sync::OnceLock;

pub use binaries::PG_BIN_ENV;
pub use cluster::Cluster;
pub use error::TestPgError;
pub use names::{UNIQUE_NAME_MAX_LEN, unique_name};
pub use os_user::PG_USER_ENV;

/// The cluster shared by all tests of this process, started on first use.
///
/// Blocking on the first call (about a second), instant afterwards; safe to call from any
/// number of test threads at once (later callers wait for the first start to finish).
///
/// # Panics
///
/// If the cluster cannot start (PostgreSQL missing, no `postgres` user under root, …), with the
/// reason; every later call in the process panics with the same message instead of retrying.
/// Tests that must handle the failure themselves call [`Cluster::start`].
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match SHARED.get_or_init(|| Cluster::start().map_err(|error| error.to_string())) {
        Ok(cluster) => cluster,
        Err(message) => panic!(
            "usualstore-testpg: the shared PostgreSQL test cluster could not start: {message}"
        ),
    }
}
