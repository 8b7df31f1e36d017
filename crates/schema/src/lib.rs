//! The store schema, as ordered SQL migrations embedded in the binary, and the runner that
//! applies them to a tenant database.
//!
//! One source of truth shared by the provider (which applies the schema when it creates or
//! updates a tenant, after `SET ROLE <db>_owner`) and store-api (which checks that the database
//! has the version it needs).
//!
//! ```no_run
//! # async fn example(client: &mut tokio_postgres::Client) -> Result<(), usualstore_schema::SchemaError> {
//! use usualstore_schema::{applied_version, apply_pending, latest_version, migrations};
//!
//! // Provider: bring the tenant database up to date (idempotent, safe to run concurrently).
//! let applied = apply_pending(client, migrations()).await?;
//!
//! // store-api: refuse to serve an outdated schema.
//! if applied_version(client).await? < latest_version() {
//!     // the provider has not migrated this tenant yet
//! }
//! # let _ = applied;
//! # Ok(())
//! # }
//! ```
//!
//! Applied versions are recorded in [`MIGRATIONS_TABLE`] with a [`checksum`] of their SQL, so an
//! edited released migration is reported instead of silently ignored.

mod access;
mod checksum;
mod error;
mod migrations;
mod runner;

pub use access::{
    LOGIN_USERS_SINCE_VERSION, LOGIN_USERS_TABLE, SECRET_TABLES, TableAccess, table_access,
};
pub use checksum::checksum;
pub use error::SchemaError;
pub use migrations::{EXTRA_MIGRATIONS_ENV, Migration, latest_version, migrations};
pub use runner::{
    BeforeCommit, MIGRATION_LOCK_KEY, MIGRATIONS_TABLE, applied_version, apply_pending,
    apply_pending_with,
};
