//! `usualstore_tenant_user`: a login user of one tenant, member of exactly one of its groups, with the
//! connection strings its application uses.

use std::str::FromStr;

use rand::Rng as _;
use rand::distr::Alphanumeric;
use usualstore_cty::{ObjectBuilder, ObjectReader, Type, Value};
use usualstore_tenancy::{TenantError, UserRole, UserSpec, UserStatus};

use super::{
    PlanRequest, Planned, Refreshed, Resource, attribute_diag, known_string, state_bool,
    state_string,
};
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::dsn::{self, ConnectionInfo};
use crate::schema::{Attribute, Presence, Schema};

pub const TYPE_NAME: &str = "usualstore_tenant_user";

/// Length of generated passwords: 32 alphanumerics carry about 190 bits.
const GENERATED_PASSWORD_CHARS: usize = 32;

pub struct TenantUserResource {
    schema: Schema,
}

impl TenantUserResource {
    pub fn new() -> Self {
        use Presence::{Computed, Optional, OptionalComputed, Required};
        let schema = Schema {
            version: 0,
            description: "A login user of a tenant: a PostgreSQL role that can log in and is a member of exactly one of \
                the tenant's groups (admin, developer or customer), with its connection strings.",
            attributes: vec![
                Attribute::new("id", Type::String, Computed, "`<tenant>/<username>`."),
                Attribute::new(
                    "tenant",
                    Type::String,
                    Required,
                    "Database name of the tenant (`usualstore_tenant.x.database_name`). Changing it creates a new user.",
                ),
                Attribute::new(
                    "username",
                    Type::String,
                    Required,
                    "Login name: a lowercase letter or underscore, then lowercase letters, digits and underscores, at most 53 bytes; not starting with `pg_` and not ending with `_owner`, `_admin`, `_developer` or `_customer` (the suffixes of every tenant's group roles, which such a name could take from a tenant created later); not a role usualstore did not create. Changing it creates a new user.",
                ),
                Attribute::new(
                    "role",
                    Type::String,
                    Required,
                    "`admin` (SELECT, INSERT, UPDATE, DELETE), `developer` (SELECT, INSERT, UPDATE) or `customer` (SELECT). Changed in place by switching group membership.",
                ),
                Attribute::new(
                    "password",
                    Type::String,
                    OptionalComputed,
                    "At least 8 characters. When omitted, a 32-character password is generated once and kept in state. Changing it rotates the password in place. Sent to PostgreSQL only as a SCRAM-SHA-256 verifier.",
                )
                .sensitive(),
                Attribute::new(
                    "email",
                    Type::String,
                    Optional,
                    "Contact address of the person behind the login. Kept inside the tenant's own database (readable by its owner and admin group only), never in the server-wide catalogs every login can read.",
                ),
                Attribute::new(
                    "connection_limit",
                    Type::Number,
                    OptionalComputed,
                    "Maximum concurrent connections of this user; -1 (the default) means no limit of its own.",
                ),
                Attribute::new(
                    "dsn",
                    Type::String,
                    Computed,
                    "libpq key/value connection string (`host=… port=… user=… password=… dbname=… sslmode=…`), every value quoted; host and port come from the provider's `dsn_host`/`dsn_port`.",
                )
                .sensitive(),
                Attribute::new(
                    "url",
                    Type::String,
                    Computed,
                    "The same connection as a percent-encoded `postgres://` URL.",
                )
                .sensitive(),
                Attribute::new(
                    "password_in_sync",
                    Type::Bool,
                    Computed,
                    "`false` when a refresh found that the password was changed outside Terraform; the next apply sets it back. Only checked when the provider's user may read `pg_authid` (a superuser).",
                ),
                Attribute::new(
                    "privileges_in_sync",
                    Type::Bool,
                    Computed,
                    "`false` when a refresh found role flags (SUPERUSER, CREATEDB, NOLOGIN, …), extra memberships or an unfinished create; the next apply repairs them.",
                ),
            ],
        };
        Self { schema }
    }
}

impl Default for TenantUserResource {
    fn default() -> Self {
        Self::new()
    }
}

/// The user as configuration, proposed state or plan state it; fields are None while unknown.
struct Desired {
    tenant: Option<String>,
    username: Option<String>,
    role: Option<UserRole>,
    /// Outer None: unknown. Inner None: not set (generate or keep the generated one).
    password: Option<Option<String>>,
    /// Outer None: unknown.
    email: Option<Option<String>>,
    connection_limit: Option<i32>,
}

fn invalid_value(e: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error("Invalid tenant user configuration", e.to_string()).into()
}

/// Records a failed check on `name`; true when the value passed.
fn check(diagnostics: &mut Diagnostics, name: &str, result: Result<(), TenantError>) -> bool {
    match result {
        Ok(()) => true,
        Err(TenantError::InvalidUserSetting { reason, .. }) => {
            diagnostics.push(attribute_diag(name, reason));
            false
        }
        Err(e) => {
            diagnostics.push(attribute_diag(name, e));
            false
        }
    }
}

/// A required string, None while unknown or when missing (recorded).
fn required(
    reader: &ObjectReader<'_>,
    diagnostics: &mut Diagnostics,
    name: &str,
) -> Option<String> {
    if reader.is_unknown(name) {
        return None;
    }
    match reader.required_string(name) {
        Ok(v) => Some(v),
        Err(e) => {
            diagnostics.push(attribute_diag(name, e));
            None
        }
    }
}

/// Checks every user-set attribute, naming the attribute and what is allowed.
fn desired(value: &Value) -> Result<Desired, Diagnostics> {
    let reader = ObjectReader::new(value).map_err(invalid_value)?;
    let mut diagnostics = Diagnostics::default();
    let d = &mut diagnostics;
    let tenant = required(&reader, d, "tenant").filter(|t| {
        check(
            d,
            "tenant",
            usualstore_tenancy::validate_database_name(t).map_err(Into::into),
        )
    });
    let username = required(&reader, d, "username")
        .filter(|u| check(d, "username", usualstore_tenancy::validate_username(u)));
    let role = required(&reader, d, "role").and_then(|text| match UserRole::from_str(&text) {
        Ok(role) => Some(role),
        Err(e) => {
            d.push(attribute_diag("role", e));
            None
        }
    });

    let password = if reader.is_unknown("password") {
        None
    } else {
        match reader.optional_string("password") {
            Ok(Some(p)) => check(
                &mut diagnostics,
                "password",
                usualstore_tenancy::validate_password(&p),
            )
            .then_some(Some(p)),
            Ok(None) => Some(None),
            Err(e) => {
                diagnostics.push(attribute_diag("password", e));
                None
            }
        }
    };
    let email = if reader.is_unknown("email") {
        None
    } else {
        match reader.optional_string("email") {
            Ok(Some(e)) => check(
                &mut diagnostics,
                "email",
                usualstore_tenancy::validate_email(&e),
            )
            .then_some(Some(e)),
            Ok(None) => Some(None),
            Err(e) => {
                diagnostics.push(attribute_diag("email", e));
                None
            }
        }
    };
    let connection_limit = if reader.is_unknown("connection_limit") {
        None
    } else {
        match reader.optional_i64("connection_limit") {
            Ok(None) => Some(-1),
            Ok(Some(n)) => match i32::try_from(n) {
                Ok(n)
                    if check(
                        &mut diagnostics,
                        "connection_limit",
                        usualstore_tenancy::validate_connection_limit(n),
                    ) =>
                {
                    Some(n)
                }
                Ok(_) => None,
                Err(_) => {
                    diagnostics.push(attribute_diag(
                        "connection_limit",
                        format!("must be -1 (no limit) or a count of connections, got {n}"),
                    ));
                    None
                }
            },
            Err(e) => {
                diagnostics.push(attribute_diag("connection_limit", e));
                None
            }
        }
    };

    diagnostics.into_result()?;
    Ok(Desired {
        tenant,
        username,
        role,
        password,
        email,
        connection_limit,
    })
}

fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(GENERATED_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

fn connection_strings(
    ctx: &ProviderContext,
    tenant: &str,
    username: &str,
    password: &str,
) -> (String, String) {
    let settings = &ctx.settings;
    let info = ConnectionInfo {
        host: &settings.dsn_host,
        port: settings.dsn_port,
        user: username,
        password,
        dbname: tenant,
        sslmode: settings.sslmode.as_str(),
        sslrootcert: settings.dsn_sslrootcert.as_deref(),
    };
    (dsn::key_value(&info), dsn::url(&info))
}

/// The planned (or, with every value known, applied) state.
fn planned_state(
    ctx: Option<&ProviderContext>,
    desired: &Desired,
    password: Option<&str>,
) -> Value {
    let id = match (&desired.tenant, &desired.username) {
        (Some(t), Some(u)) => Some(format!("{t}/{u}")),
        _ => None,
    };
    let strings = match (ctx, &desired.tenant, &desired.username, password) {
        (Some(ctx), Some(t), Some(u), Some(p)) => Some(connection_strings(ctx, t, u, p)),
        _ => None,
    };
    let mut b = ObjectBuilder::new();
    b = known_string(b, "id", id.as_deref());
    b = known_string(b, "tenant", desired.tenant.as_deref());
    b = known_string(b, "username", desired.username.as_deref());
    b = known_string(b, "role", desired.role.map(UserRole::as_str));
    b = known_string(b, "password", password);
    b = match &desired.email {
        Some(email) => b.optional_string("email", email.as_deref()),
        None => b.unknown("email"),
    };
    b = match desired.connection_limit {
        Some(n) => b.i64("connection_limit", i64::from(n)),
        None => b.unknown("connection_limit"),
    };
    b = known_string(b, "dsn", strings.as_ref().map(|(kv, _)| kv.as_str()));
    b = known_string(b, "url", strings.as_ref().map(|(_, url)| url.as_str()));
    b.bool("password_in_sync", true)
        .bool("privileges_in_sync", true)
        .build()
}

/// A state as the catalog shows the user; the password and connection strings live only in Terraform.
fn observed_state(prior: &Value, status: &UserStatus) -> Value {
    let keep = |name: &str| state_string(prior, name);
    ObjectBuilder::new()
        .string("id", format!("{}/{}", status.database, status.username))
        .string("tenant", &status.database)
        .string("username", &status.username)
        .optional_string("role", status.role.map(UserRole::as_str))
        .optional_string("password", keep("password").as_deref())
        .optional_string("email", status.email.as_deref())
        .i64("connection_limit", i64::from(status.connection_limit))
        .optional_string("dsn", keep("dsn").as_deref())
        .optional_string("url", keep("url").as_deref())
        // Where the verifier cannot be read the password is taken to be right; the docs say so.
        .bool("password_in_sync", status.password_matches.unwrap_or(true))
        .bool("privileges_in_sync", status.privileges_in_sync())
        .build()
}

fn user_diagnostic(action: &str, tenant: &str, username: &str, error: TenantError) -> Diagnostics {
    let attribute = match &error {
        TenantError::UserConflict { .. } => Some("username"),
        TenantError::InvalidUserSetting { field, .. } => Some(*field),
        TenantError::NotFound { .. }
        | TenantError::NotManaged { .. }
        | TenantError::TenantIncomplete { .. } => Some("tenant"),
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

/// `tenant` and `username` of a state, from the attributes or, failing that, the ID.
fn identity(state: &Value) -> Option<(String, String)> {
    if let (Some(t), Some(u)) = (
        state_string(state, "tenant"),
        state_string(state, "username"),
    ) {
        return Some((t, u));
    }
    let id = state_string(state, "id")?;
    let (t, u) = id.split_once('/')?;
    Some((t.to_owned(), u.to_owned()))
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
        match desired(config) {
            Ok(_) => Diagnostics::default(),
            Err(diagnostics) => diagnostics,
        }
    }

    async fn read(&self, ctx: &ProviderContext, state: &Value) -> Result<Refreshed, Diagnostics> {
        let (tenant, username) = identity(state).ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Tenant user state has no tenant or username",
                "Remove it from the state (terraform state rm) and import it again as <tenant>/<username>.",
            ))
        })?;
        let password = state_string(state, "password");
        match usualstore_tenancy::read_user(&ctx.server, &tenant, &username, password.as_deref())
            .await
        {
            Ok(None) => {
                tracing::info!(tenant = %tenant, user = %username, "login user is gone; removing it from state");
                Ok(Value::Null.into())
            }
            Ok(Some(status)) => Ok(observed_state(state, &status).into()),
            Err(e) => Err(user_diagnostic("read", &tenant, &username, e)),
        }
    }

    async fn plan(
        &self,
        ctx: Option<&ProviderContext>,
        request: PlanRequest<'_>,
    ) -> Result<Planned, Diagnostics> {
        let no_warnings = Diagnostics::default();
        if request.proposed.is_null() {
            return Ok(Planned {
                state: Value::Null,
                requires_replace: Vec::new(),
                warnings: no_warnings,
            });
        }
        let desired = desired(request.config)?;
        let mut requires_replace = Vec::new();
        let replacing_or_creating = if request.prior.is_null() {
            true
        } else {
            for name in ["tenant", "username"] {
                let planned = match name {
                    "tenant" => desired.tenant.as_deref(),
                    _ => desired.username.as_deref(),
                };
                if planned.is_none()
                    || planned.map(str::to_owned) != state_string(request.prior, name)
                {
                    requires_replace.push(name);
                }
            }
            !requires_replace.is_empty()
        };
        // A configured password is used as is; otherwise the generated one is kept, or generated at apply.
        let password = match &desired.password {
            None => None,
            Some(Some(p)) => Some(p.clone()),
            Some(None) if replacing_or_creating => None,
            Some(None) => state_string(request.prior, "password"),
        };
        Ok(Planned {
            state: planned_state(ctx, &desired, password.as_deref()),
            requires_replace,
            warnings: no_warnings,
        })
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        if planned.is_null() {
            let (tenant, username) = identity(prior).ok_or_else(unknown_at_apply)?;
            usualstore_tenancy::delete_user(&ctx.server, &tenant, &username)
                .await
                .map_err(|e| user_diagnostic("delete", &tenant, &username, e))?;
            return Ok(Value::Null);
        }
        let desired = desired(planned)?;
        let (Some(tenant), Some(username), Some(role), Some(email), Some(connection_limit)) = (
            desired.tenant.clone(),
            desired.username.clone(),
            desired.role,
            desired.email.clone(),
            desired.connection_limit,
        ) else {
            return Err(unknown_at_apply());
        };
        let planned_password = state_string(planned, "password");
        let password = planned_password.clone().unwrap_or_else(generate_password);
        let spec = UserSpec {
            database: tenant.clone(),
            username: username.clone(),
            role,
            password: password.clone(),
            email,
            connection_limit,
        };
        let status = if prior.is_null() {
            usualstore_tenancy::create_user(&ctx.server, &spec)
                .await
                .map_err(|e| user_diagnostic("create", &tenant, &username, e))?
        } else {
            let set_password = state_string(prior, "password") != planned_password
                || planned_password.is_none()
                || state_bool(prior, "password_in_sync") == Some(false);
            usualstore_tenancy::update_user(&ctx.server, &spec, set_password)
                .await
                .map_err(|e| user_diagnostic("update", &tenant, &username, e))?
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
        Ok(planned_state(Some(ctx), &desired, Some(&password)))
    }

    async fn import(&self, _ctx: &ProviderContext, id: &str) -> Result<Value, Diagnostics> {
        let invalid = |detail: String| -> Diagnostics {
            Diagnostic::error("Invalid import ID", format!("The import ID is <tenant>/<username>, e.g. building_shop/building_ops: {detail}")).into()
        };
        let (tenant, username) = id
            .split_once('/')
            .ok_or_else(|| invalid(format!("got {id:?}")))?;
        usualstore_tenancy::validate_database_name(tenant).map_err(|e| invalid(e.to_string()))?;
        usualstore_tenancy::validate_identifier(username).map_err(|e| invalid(e.to_string()))?;
        // Terraform reads right after; the password cannot be read back, so it stays null until the next apply
        // sets one (the configured one, or a newly generated one).
        Ok(ObjectBuilder::new()
            .string("id", id)
            .string("tenant", tenant)
            .string("username", username)
            .null("role")
            .null("password")
            .null("email")
            .null("connection_limit")
            .null("dsn")
            .null("url")
            .bool("password_in_sync", true)
            .bool("privileges_in_sync", true)
            .build())
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

    #[test]
    fn bad_values_name_their_attribute() {
        let config = ObjectBuilder::new()
            .string("tenant", "Bad-Tenant")
            .string("username", "ok_user")
            .string("role", "root")
            .string("password", "short")
            .string("email", "not an email")
            .i64("connection_limit", -5)
            .null("id")
            .null("dsn")
            .null("url")
            .null("password_in_sync")
            .null("privileges_in_sync")
            .build();
        let Err(diagnostics) = desired(&config) else {
            panic!("bad config accepted");
        };
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
