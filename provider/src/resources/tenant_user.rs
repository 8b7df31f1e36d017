//! `usualstore_tenant_user`: a login user of one tenant, member of exactly one of its groups, with the
//! connection strings its application uses.

use std::str::FromStr;

use rand::Rng as _;
use rand::distr::Alphanumeric;
use usualstore_cty::Value;
use usualstore_tenancy::{
    PasswordCheck, TenantError, UserRole, UserSetting, UserSpec, UserStatus, verifier_fingerprint,
};

use super::{
    Applied, ApplyRequest, PlanRequest, Planned, Private, Refreshed, Resource, attribute_diag,
    check_attribute,
};
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::dsn;
use crate::model::{Attr, resource_model};
use crate::schema::{Schema, computed, optional, optional_computed, plan_attributes, required};

pub const TYPE_NAME: &str = "usualstore_tenant_user";

/// Private-state key of the fingerprint of the verifier the last apply set (see
/// `usualstore_tenancy::verifier_fingerprint`): a refresh that finds the same verifier knows the
/// password is unchanged without recomputing it.
const VERIFIER_FINGERPRINT: &str = "verifier_sha256";

/// Length of generated passwords: 32 alphanumerics carry about 190 bits.
const GENERATED_PASSWORD_CHARS: usize = 32;

resource_model! {
    /// The attributes of `usualstore_tenant_user`.
    pub struct TenantUserModel {
        id: String => computed(
            "`<tenant>/<username>`; known once the user exists (a reference to it waits for the create).",
        ),
        tenant: String => required(
            "Database name of the tenant (`usualstore_tenant.x.database_name`). Changing it creates a new user.",
        )
        .requires_replace(),
        username: String => required(
            "Login name: a lowercase letter or underscore, then lowercase letters, digits and underscores, at most \
             53 bytes; not starting with `pg_` and not ending with `_owner`, `_admin`, `_developer` or `_customer` \
             (the suffixes of every tenant's group roles, which such a name could take from a tenant created \
             later); not a role usualstore did not create. Changing it creates a new user.",
        )
        .requires_replace(),
        role: String => required(
            "`admin`, `developer` or `customer`: the tenant group the login joins (see the privilege matrix of \
             `usualstore_tenant`). Changed in place by switching group membership.",
        ),
        password: String => optional_computed(
            "At least 8 characters. When omitted (and `password_wo` is not used), a 32-character password is \
             generated once and kept in state. Changing it rotates the password in place. Sent to PostgreSQL only \
             as a SCRAM-SHA-256 verifier.",
        )
        .sensitive()
        .use_state_for_unknown(),
        password_wo: String => optional(
            "Write-only password (Terraform 1.11 or later), instead of `password`: at least 8 characters, sent to \
             PostgreSQL as a SCRAM-SHA-256 verifier when the user is created and whenever `password_wo_version` \
             changes, and never stored in state or plan. `dsn` and `url` then carry no password: the application \
             gets it from where the operator keeps it.",
        )
        .sensitive()
        .write_only(),
        password_wo_version: i64 => optional(
            "Required with `password_wo`: Terraform cannot see a change of a value it does not store, so a new \
             `password_wo` is sent when this number changes.",
        ),
        email: String => optional(
            "Contact address of the person behind the login. Kept inside the tenant's own database (readable by \
             its owner and admin group only), never in the server-wide catalogs every login can read.",
        ),
        connection_limit: i64 => optional_computed(
            "Maximum concurrent connections of this user; -1 (the default) means no limit of its own.",
        )
        .default_value(-1),
        dsn: String => computed(
            "libpq key/value connection string (`host=… port=… user=… password=… dbname=… sslmode=…`, and \
             `sslrootcert=…` when the provider has one), every value quoted; host and port come from the \
             provider's `dsn_host`/`dsn_port`.",
        )
        .sensitive(),
        url: String => computed("The same connection as a percent-encoded `postgres://` URL.").sensitive(),
        password_in_sync: bool => computed(
            "`false` when a refresh found that the password was changed outside Terraform; the next apply sets it \
             back. Only checked when the provider's user may read `pg_authid` (a superuser).",
        ),
        privileges_in_sync: bool => computed(
            "`false` when a refresh found role flags (SUPERUSER, CREATEDB, NOLOGIN, …), extra memberships or an \
             unfinished create; the next apply repairs them.",
        ),
    }
}

impl TenantUserModel {
    /// The user-set attributes checked with the tenancy rules, each diagnostic on its attribute.
    fn check(&self) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        check_attribute(&mut diagnostics, "tenant", &self.tenant, |name| {
            usualstore_tenancy::validate_database_name(name)
        });
        check_attribute(&mut diagnostics, "username", &self.username, username_rule);
        check_attribute(&mut diagnostics, "role", &self.role, |role| {
            UserRole::from_str(role).map(drop)
        });
        check_attribute(&mut diagnostics, "password", &self.password, password_rule);
        check_attribute(
            &mut diagnostics,
            "password_wo",
            &self.password_wo,
            |password| {
                if password.is_empty() {
                    return Err(
                    "is empty: a write-only password is stored nowhere, so none can be generated; \
                     give the user a password (at least 8 characters)"
                        .to_owned(),
                );
                }
                password_rule(password)
            },
        );
        // Unknown values are checked again once known.
        match (
            self.password.is_set(),
            self.password_wo.is_set(),
            self.password_wo_version.is_set(),
        ) {
            (Some(true), Some(true), _) => diagnostics.push(attribute_diag(
                "password_wo",
                "password and password_wo exclude each other: password_wo keeps the password out of state \
                 (Terraform 1.11 or later), password keeps it there.",
            )),
            (_, Some(true), Some(false)) => diagnostics.push(attribute_diag(
                "password_wo_version",
                "is required with password_wo: give it a number and change it whenever password_wo changes.",
            )),
            (_, Some(false), Some(true)) => diagnostics.push(attribute_diag(
                "password_wo_version",
                "is only used with password_wo; remove it, or set password_wo.",
            )),
            _ => {}
        }
        check_attribute(&mut diagnostics, "email", &self.email, |email| {
            usualstore_tenancy::validate_email(email).map_err(reason)
        });
        if let Attr::Known(limit) = self.connection_limit {
            let checked = i32::try_from(limit)
                .map_err(|_| {
                    format!("must be -1 (no limit) or a count of connections, got {limit}")
                })
                .and_then(|limit| {
                    usualstore_tenancy::validate_connection_limit(limit).map_err(reason)
                });
            if let Err(reason) = checked {
                diagnostics.push(attribute_diag("connection_limit", reason));
            }
        }
        diagnostics
    }

    /// Whether the password is write-only: given in `password_wo`, which plans and states hold as
    /// null, so its version is what says so.
    fn password_is_write_only(&self) -> bool {
        !self.password_wo.is_null() || !self.password_wo_version.is_null()
    }

    /// Fills what follows from the other values: the ID, the connection strings and the in-sync flags.
    fn derive(&mut self, ctx: Option<&ProviderContext>) {
        self.id = match (self.tenant.known(), self.username.known()) {
            (Some(tenant), Some(username)) => Attr::Known(format!("{tenant}/{username}")),
            _ => Attr::Unknown,
        };
        // A write-only password stays out of the connection strings too.
        let password = match (self.password_is_write_only(), self.password.known()) {
            (true, _) => Some(None),
            (false, Some(password)) => Some(Some(password.as_str())),
            (false, None) => None,
        };
        let strings = match (ctx, self.tenant.known(), self.username.known(), password) {
            (Some(ctx), Some(tenant), Some(username), Some(password)) => {
                Some(dsn::for_user(ctx, tenant, username, password))
            }
            _ => None,
        };
        (self.dsn, self.url) = match strings {
            Some((dsn, url)) => (Attr::Known(dsn), Attr::Known(url)),
            None => (Attr::Unknown, Attr::Unknown),
        };
        self.password_in_sync = Attr::Known(true);
        self.privileges_in_sync = Attr::Known(true);
    }

    /// `(tenant, username)`, from the attributes or, failing that, the ID.
    fn identity(&self) -> Option<(String, String)> {
        if let (Some(tenant), Some(username)) = (self.tenant.known(), self.username.known()) {
            return Some((tenant.clone(), username.clone()));
        }
        let (tenant, username) = self.id.known()?.split_once('/')?;
        Some((tenant.to_owned(), username.to_owned()))
    }

    /// The user as the catalog shows it, over `prior`: the password and connection strings live only in
    /// Terraform.
    fn observed(prior: &TenantUserModel, status: &UserStatus) -> TenantUserModel {
        TenantUserModel {
            id: Attr::Known(format!("{}/{}", status.database, status.username)),
            tenant: Attr::Known(status.database.clone()),
            username: Attr::Known(status.username.clone()),
            role: Attr::from_option(status.role.map(|role| role.as_str().to_owned())),
            password: prior.password.clone(),
            password_wo: Attr::Null,
            password_wo_version: prior.password_wo_version.clone(),
            email: Attr::from_option(status.email.clone()),
            connection_limit: Attr::Known(i64::from(status.connection_limit)),
            dsn: prior.dsn.clone(),
            url: prior.url.clone(),
            // Where the verifier cannot be read the password is taken to be right; the docs say so.
            password_in_sync: Attr::Known(status.password_matches.unwrap_or(true)),
            privileges_in_sync: Attr::Known(status.privileges_in_sync()),
        }
    }
}

/// The tenancy rule for login names, as an attribute check.
pub(crate) fn username_rule(name: &str) -> Result<(), String> {
    usualstore_tenancy::validate_username(name).map_err(reason)
}

/// The tenancy rule for passwords, as an attribute check.
pub(crate) fn password_rule(password: &str) -> Result<(), String> {
    usualstore_tenancy::validate_password(password).map_err(reason)
}

/// The reason of a refused user setting, without the setting's name (the diagnostic names the attribute).
fn reason(error: TenantError) -> String {
    match error {
        TenantError::InvalidUserSetting { reason, .. } => reason,
        other => other.to_string(),
    }
}

pub struct TenantUserResource {
    schema: Schema,
}

impl TenantUserResource {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "A login user of a tenant: a PostgreSQL role that can log in and is a member of exactly \
                    one of the tenant's groups (admin, developer or customer), with its connection strings.",
                attributes: TenantUserModel::attributes(),
            },
        }
    }
}

impl Default for TenantUserResource {
    fn default() -> Self {
        Self::new()
    }
}

fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(GENERATED_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

fn user_diagnostic(
    action: &str,
    tenant: &str,
    username: &str,
    write_only: bool,
    error: TenantError,
) -> Diagnostics {
    let attribute = match &error {
        TenantError::UserConflict { .. } => Some("username"),
        TenantError::InvalidUserSetting { setting, .. } => Some(match setting {
            UserSetting::Username => "username",
            UserSetting::Password if write_only => "password_wo",
            UserSetting::Password => "password",
            UserSetting::Email => "email",
            UserSetting::ConnectionLimit => "connection_limit",
        }),
        TenantError::NotFound { .. }
        | TenantError::NotManaged { .. }
        | TenantError::TenantIncomplete { .. }
        | TenantError::SchemaTooOld { .. } => Some("tenant"),
        _ => None,
    };
    let diagnostic = Diagnostic::error(
        format!("Could not {action} user {username:?} of tenant {tenant:?}"),
        error.to_string(),
    );
    match attribute {
        Some(attribute) => diagnostic.on_attribute(attribute).into(),
        None => diagnostic.into(),
    }
}

fn unknown_at_apply() -> Diagnostics {
    Diagnostic::error(
        "Planned tenant user has unknown values",
        "tenant, username, role, email and connection_limit must be known when the user is applied. This is a \
         bug in the provider or Terraform; please report it.",
    )
    .into()
}

#[tonic::async_trait]
impl Resource for TenantUserResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        match TenantUserModel::from_value(config) {
            Ok(model) => model.check(),
            Err(diagnostics) => diagnostics,
        }
    }

    async fn read(
        &self,
        ctx: &ProviderContext,
        state: &Value,
        private: &Private,
    ) -> Result<Refreshed, Diagnostics> {
        let state = TenantUserModel::from_value(state)?;
        let (tenant, username) = state.identity().ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Tenant user state has no tenant or username",
                "Remove it from the state (terraform state rm) and import it again as <tenant>/<username>.",
            ))
        })?;
        let check = PasswordCheck {
            password: state.password.known().map(String::as_str),
            fingerprint: private.get(VERIFIER_FINGERPRINT),
        };
        match usualstore_tenancy::read_user(&ctx.server, &tenant, &username, Some(check)).await {
            Ok(None) => {
                tracing::info!(tenant = %tenant, user = %username, "login user is gone; removing it from state");
                Ok(Value::Null.into())
            }
            Ok(Some(status)) => Ok(TenantUserModel::observed(&state, &status).to_value().into()),
            Err(e) => Err(user_diagnostic(
                "read",
                &tenant,
                &username,
                state.password_is_write_only(),
                e,
            )),
        }
    }

    async fn plan(
        &self,
        ctx: Option<&ProviderContext>,
        request: PlanRequest<'_>,
    ) -> Result<Planned, Diagnostics> {
        if request.proposed.is_null() {
            return Ok(Planned::destroy());
        }
        TenantUserModel::from_value(request.config)?
            .check()
            .into_result()?;
        // A configured password is used as is; otherwise the generated one is kept (the declaration's
        // use_state_for_unknown), or generated at apply.
        let (planned, requires_replace) = plan_attributes(
            &self.schema.attributes,
            request.prior,
            request.proposed,
            request.config,
        );
        let mut planned = TenantUserModel::from_value(&planned)?;
        let config = TenantUserModel::from_value(request.config)?;
        planned.password_wo_version = config.password_wo_version.clone();
        if config.password_is_write_only() {
            planned.password = Attr::Null;
        } else if planned.password.is_null() {
            // No password yet (an imported user, or one leaving password_wo): one is generated at
            // apply.
            planned.password = Attr::Unknown;
        }
        planned.derive(ctx);
        if request.prior.is_null() {
            planned.id = Attr::Unknown;
        }
        Ok(Planned {
            state: planned.to_value(),
            requires_replace,
            warnings: Diagnostics::default(),
        })
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        request: ApplyRequest<'_>,
    ) -> Result<Applied, Diagnostics> {
        let prior = TenantUserModel::from_value(request.prior)?;
        if request.planned.is_null() {
            let (tenant, username) = prior.identity().ok_or_else(unknown_at_apply)?;
            usualstore_tenancy::delete_user(&ctx.server, &tenant, &username)
                .await
                .map_err(|e| {
                    user_diagnostic(
                        "delete",
                        &tenant,
                        &username,
                        prior.password_is_write_only(),
                        e,
                    )
                })?;
            return Ok(Value::Null.into());
        }
        let mut planned = TenantUserModel::from_value(request.planned)?;
        // Write-only values reach the provider in the configuration only.
        let config = TenantUserModel::from_value(request.config)?;
        let (
            Attr::Known(tenant),
            Attr::Known(username),
            Attr::Known(role),
            Ok(email),
            Attr::Known(connection_limit),
        ) = (
            planned.tenant.clone(),
            planned.username.clone(),
            planned.role.clone(),
            planned.email.option(),
            planned.connection_limit.clone(),
        )
        else {
            return Err(unknown_at_apply());
        };
        let role = UserRole::from_str(&role).map_err(|e| attribute_diag("role", e))?;
        let connection_limit = i32::try_from(connection_limit).map_err(|_| {
            attribute_diag(
                "connection_limit",
                "must be -1 (no limit) or a count of connections",
            )
        })?;
        let write_only = config.password_is_write_only();
        let (password, set_password) = if write_only {
            let Attr::Known(password) = config.password_wo.clone() else {
                return Err(unknown_at_apply());
            };
            let set = prior.password_wo_version != planned.password_wo_version
                || prior.password_in_sync == Attr::Known(false);
            (password, set)
        } else {
            let planned_password = planned.password.known().cloned();
            let set = prior.password.known() != planned_password.as_ref()
                || planned_password.is_none()
                || prior.password_in_sync == Attr::Known(false);
            (planned_password.unwrap_or_else(generate_password), set)
        };
        let spec = UserSpec {
            database: tenant.clone(),
            username: username.clone(),
            role,
            password: password.clone(),
            email: email.cloned(),
            connection_limit,
        };
        let status = if prior.username.is_null() {
            usualstore_tenancy::create_user(&ctx.server, &spec)
                .await
                .map_err(|e| user_diagnostic("create", &tenant, &username, write_only, e))?
        } else {
            usualstore_tenancy::update_user(&ctx.server, &spec, set_password)
                .await
                .map_err(|e| user_diagnostic("update", &tenant, &username, write_only, e))?
        };
        if !status.privileges_in_sync() || status.role != Some(role) {
            return Err(Diagnostic::error(
                format!("User {username:?} of tenant {tenant:?} did not converge"),
                format!(
                    "The user was applied but a read-back still finds: {}. Run terraform apply again; if this \
                     persists, report it with the provider's TF_LOG=DEBUG output.",
                    status.drift.join("; ")
                ),
            )
            .into());
        }
        planned.password = if write_only {
            Attr::Null
        } else {
            Attr::Known(password)
        };
        planned.password_wo = Attr::Null;
        planned.derive(Some(ctx));
        let mut private = request.private.clone();
        if let Some(verifier) = &status.verifier_set {
            private.set(VERIFIER_FINGERPRINT, Some(verifier_fingerprint(verifier)));
        }
        Ok(Applied {
            state: planned.to_value(),
            private,
        })
    }

    async fn import(&self, _ctx: &ProviderContext, id: &str) -> Result<Value, Diagnostics> {
        let invalid = |detail: String| -> Diagnostics {
            Diagnostic::error(
                "Invalid import ID",
                format!(
                    "The import ID is <tenant>/<username>, e.g. building_shop/building_ops: {detail}"
                ),
            )
            .into()
        };
        let (tenant, username) = id
            .split_once('/')
            .ok_or_else(|| invalid(format!("got {id:?}")))?;
        usualstore_tenancy::validate_database_name(tenant).map_err(|e| invalid(e.to_string()))?;
        usualstore_tenancy::validate_identifier(username).map_err(|e| invalid(e.to_string()))?;
        // Terraform reads right after; the password cannot be read back, so it stays null until the next apply
        // sets one (the configured one, or a newly generated one).
        Ok(TenantUserModel {
            id: Attr::Known(id.to_owned()),
            tenant: Attr::Known(tenant.to_owned()),
            username: Attr::Known(username.to_owned()),
            password_in_sync: Attr::Known(true),
            privileges_in_sync: Attr::Known(true),
            ..TenantUserModel::default()
        }
        .to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password();
        assert_eq!(a.len(), GENERATED_PASSWORD_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }

    fn password_diagnostics(model: TenantUserModel) -> Vec<String> {
        model
            .check()
            .0
            .iter()
            .filter_map(|d| d.attribute.clone())
            .collect()
    }

    #[test]
    fn write_only_password_rules() {
        let known = |text: &str| Attr::Known(text.to_owned());
        let both = TenantUserModel {
            password: known("kept in state"),
            password_wo: known("kept nowhere"),
            password_wo_version: Attr::Known(1),
            ..TenantUserModel::default()
        };
        assert_eq!(password_diagnostics(both), ["password_wo"]);
        let no_version = TenantUserModel {
            password_wo: known("kept nowhere"),
            ..TenantUserModel::default()
        };
        assert_eq!(password_diagnostics(no_version), ["password_wo_version"]);
        let lone_version = TenantUserModel {
            password_wo_version: Attr::Known(1),
            ..TenantUserModel::default()
        };
        assert_eq!(password_diagnostics(lone_version), ["password_wo_version"]);
        // Not known yet (a module's conditional during validation): checked again at plan.
        let unknown = TenantUserModel {
            password: Attr::Unknown,
            password_wo: Attr::Unknown,
            password_wo_version: Attr::Unknown,
            ..TenantUserModel::default()
        };
        assert!(password_diagnostics(unknown).is_empty());
        let short = TenantUserModel {
            password_wo: known("short"),
            password_wo_version: Attr::Known(1),
            ..TenantUserModel::default()
        };
        assert_eq!(password_diagnostics(short), ["password_wo"]);
    }

    #[test]
    fn bad_values_name_their_attribute() {
        let config = TenantUserModel {
            tenant: Attr::Known("Bad-Tenant".into()),
            username: Attr::Known("ok_user".into()),
            role: Attr::Known("root".into()),
            password: Attr::Known("short".into()),
            email: Attr::Known("not an email".into()),
            connection_limit: Attr::Known(-5),
            ..TenantUserModel::default()
        };
        let diagnostics = config.check();
        let attributes: Vec<_> = diagnostics
            .0
            .iter()
            .filter_map(|d| d.attribute.clone())
            .collect();
        for name in ["tenant", "role", "password", "email", "connection_limit"] {
            assert!(
                attributes.iter().any(|a| a == name),
                "{name} not named: {attributes:?}"
            );
        }
    }
}
