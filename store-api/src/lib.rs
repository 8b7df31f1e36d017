//! store-api: the store's HTTP JSON API for one tenant database, or for many by host name.
//!
//! One process serves one tenant (`DATABASE_DSN`) or, in router mode, every tenant of a file
//! chosen by the request's host name ([`registry`]), configured only by its environment
//! ([`config`]). Requests go
//! through one middleware ([`app`]) that assigns a request id, enforces a timeout, records
//! metrics and logs; handlers live in [`routes`], one module per resource, and talk to
//! PostgreSQL through a deadpool of tokio-postgres connections ([`db`]). The tenant's web front
//! end (catalogue pages and the back office) is [`storefront`], on the same router.

pub mod app;
pub mod auth;
pub mod budget;
pub mod cli;
pub mod config;
pub mod db;
pub mod dsn;
pub mod error;
pub mod extract;
pub mod hostname;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod registry;
pub mod routes;
pub mod server;
pub mod storefront;
pub mod tenant;
pub mod tenants_file;
pub mod throttle;
pub mod token_listener;

pub use app::{AppState, ops_router, router};
pub use config::Config;
pub use registry::Registry;
pub use routes::operations::NEEDED_SCHEMA_VERSION;
pub use server::{Listener, serve};
