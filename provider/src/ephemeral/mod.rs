//! Ephemeral resources (protocol 6.7+, Terraform 1.10+): values opened for one plan or apply and
//! never written to state or plan files.

mod dsn;

use usualstore_cty::Value;

use crate::config::ProviderContext;
use crate::diagnostics::Diagnostics;
use crate::schema::Schema;

#[tonic::async_trait]
pub trait EphemeralResource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> &Schema;

    /// Static checks of a configuration; unknown values are skipped.
    fn validate(&self, config: &Value) -> Diagnostics;

    /// The value for a wholly known configuration (Terraform does not open one that is not).
    async fn open(&self, ctx: &ProviderContext, config: &Value) -> Result<Value, Diagnostics>;
}

pub fn all() -> Vec<Box<dyn EphemeralResource>> {
    vec![Box::new(dsn::DsnEphemeral::new())]
}
