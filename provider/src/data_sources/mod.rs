//! Data sources: what is on the provider's server, read from the catalogs and each tenant's own
//! marker (there is no registry of tenants, by design).

mod tenant;
mod tenant_user;
mod tenants;

use usualstore_cty::Value;

use crate::config::ProviderContext;
use crate::diagnostics::Diagnostics;
use crate::resources::Refreshed;
use crate::schema::Schema;

#[tonic::async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> &Schema;

    /// Static checks of a configuration; unknown values are skipped.
    fn validate(&self, config: &Value) -> Diagnostics;

    /// The data for a wholly known configuration (Terraform reads a data source only then).
    async fn read(&self, ctx: &ProviderContext, config: &Value) -> Result<Refreshed, Diagnostics>;
}

pub fn all() -> Vec<Box<dyn DataSource>> {
    vec![
        Box::new(tenants::TenantsDataSource::new()),
        Box::new(tenant::TenantDataSource::new()),
        Box::new(tenant_user::TenantUserDataSource::new()),
    ]
}
