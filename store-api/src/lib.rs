//! store-api: the store's HTTP JSON API for one tenant database.
//!
//! One process serves one tenant, configured only by its environment ([`config`]). Requests go
//! through one middleware ([`app`]) that assigns a request id, enforces a timeout, records
//! metrics and logs; handlers live in [`routes`], one module per resource, and talk to
//! PostgreSQL through a deadpool of tokio-postgres connections ([`db`]). The tenant's web front
//! end (catalogue pages and the back office) is [`storefront`], on the same router.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod dsn;
pub mod error;
pub mod extract;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod storefront;
pub mod tenant;
pub mod throttle;

pub use app::{AppState, ops_router, router};
pub use config::Config;
pub use routes::operations::NEEDED_SCHEMA_VERSION;
pub use server::{Listener, serve};
