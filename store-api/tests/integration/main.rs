//! store-api against real PostgreSQL: tenants are provisioned by `usualstore-tenancy` (the
//! provider's code and schema) on throwaway clusters from `usualstore-testpg`.

mod common;

mod auth;
mod browser;
mod catalogue;
mod errors;
mod hostile;
mod operations;
mod orders;
mod process;
mod resilience;
mod router;
mod storefront;
mod token_notify;
mod webdriver;
