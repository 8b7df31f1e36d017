//! Every test that drives the provider binary, in one test binary (one link instead of one per file):
//! the plugin protocol as go-plugin sees it, acceptance tests through the real `terraform` (1.11 and
//! 1.0.3) against throwaway PostgreSQL clusters, the customer workflow, faults, several servers, the
//! attack suite, the docs generated from the schema, the release artefacts installed from a packed
//! mirror, modules/tenant's own `terraform test` files, and examples/tenants/fleet.sh's rollouts.

mod customers_support;
mod plugin_client;
#[path = "../../src/proto.rs"]
#[allow(dead_code)]
mod proto;
mod support;

mod attacks;
mod customers;
mod data_sources;
mod docs;
mod examples;
mod faults;
mod fleet;
mod plugin_protocol;
mod release;
mod several_servers;
mod tenant;
mod tenant_module;
mod tenant_user;
mod write_only;
