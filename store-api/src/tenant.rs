//! The tenant's display name, shown in responses, errors, `/metrics` and every log line.
//!
//! `TENANT_NAME` sets it. Without it, store-api reads the name the provider recorded for the
//! tenant: the provider marks each tenant database with a JSON comment
//! (`COMMENT ON DATABASE … IS '{"usualstore":1,"tenant_name":"…",…}'`), which any login of the
//! database can read. Until the database has answered, the database's name stands in.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::Pool;

/// The longest name accepted from the database comment (the provider allows 100 characters).
const MAX_CHARS: usize = 200;

/// Reads the provider's marker of the current database.
pub const RECORDED_NAME: &str = "SELECT pg_catalog.shobj_description(d.oid, 'pg_database') \
     FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()";

#[derive(Debug)]
pub struct TenantName {
    known: OnceLock<Arc<str>>,
    stand_in: Arc<str>,
}

impl TenantName {
    /// The name `TENANT_NAME` gave.
    pub fn fixed(name: &str) -> TenantName {
        let name: Arc<str> = Arc::from(name);
        TenantName {
            known: OnceLock::from(name.clone()),
            stand_in: name,
        }
    }

    /// To be read from the database; `stand_in` (the database's name) until then.
    pub fn unknown(stand_in: &str) -> TenantName {
        TenantName {
            known: OnceLock::new(),
            stand_in: Arc::from(stand_in),
        }
    }

    pub fn get(&self) -> &Arc<str> {
        self.known.get().unwrap_or(&self.stand_in)
    }

    pub fn is_known(&self) -> bool {
        self.known.get().is_some()
    }

    /// Reads the recorded name. `Ok(false)`: the database carries no usable marker (not a
    /// tenant database, or edited by hand); the stand-in stays.
    pub async fn read(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<bool, tokio_postgres::Error> {
        if self.is_known() {
            return Ok(true);
        }
        let row = client.query_opt(RECORDED_NAME, &[]).await?;
        let comment = match row {
            Some(row) => row.try_get::<_, Option<String>>(0)?,
            None => None,
        };
        match comment.as_deref().and_then(recorded_name) {
            Some(name) => {
                let _ = self.known.set(Arc::from(name.as_str()));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Reads the name in the background until the database answers (every 2 s), unless it is
    /// known already.
    pub fn learn_in_background(self: &Arc<Self>, pool: Pool) {
        if self.is_known() {
            return;
        }
        let tenant = self.clone();
        tokio::spawn(async move {
            loop {
                let outcome = match pool.get().await {
                    Ok(client) => tenant.read(&client).await.map_err(|e| e.to_string()),
                    Err(error) => Err(crate::error::ApiError::from(error).message),
                };
                match outcome {
                    Ok(true) => {
                        tracing::info!(tenant = %tenant.get(), "tenant name read from the database");
                        return;
                    }
                    Ok(false) => {
                        tracing::warn!(
                            stand_in = %tenant.get(),
                            "the database carries no tenant name from the provider; set TENANT_NAME"
                        );
                        return;
                    }
                    Err(error) => {
                        tracing::debug!(error, "cannot read the tenant name yet");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
    }
}

/// `tenant_name` of a provider marker, if it is one and the name is fit to show.
pub fn recorded_name(comment: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(comment).ok()?;
    value.get("usualstore")?;
    let name = value.get("tenant_name")?.as_str()?.trim();
    if name.is_empty() || name.chars().count() > MAX_CHARS || name.chars().any(char::is_control) {
        return None;
    }
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_provider_marker_only() {
        assert_eq!(
            recorded_name(
                r#"{"usualstore":1,"tenant_name":"Building \"Shop\" Inc.","plan":"free","status":"ready"}"#
            )
            .as_deref(),
            Some("Building \"Shop\" Inc.")
        );
        assert_eq!(recorded_name(r#"{"tenant_name":"not ours"}"#), None);
        assert_eq!(recorded_name(r#"{"usualstore":1}"#), None);
        assert_eq!(
            recorded_name(r#"{"usualstore":1,"tenant_name":"a\nb"}"#),
            None
        );
        assert_eq!(recorded_name("a comment someone wrote"), None);
        let name = TenantName::unknown("shop_db");
        assert_eq!(&**name.get(), "shop_db");
        assert_eq!(&**TenantName::fixed("Shop").get(), "Shop");
    }
}
