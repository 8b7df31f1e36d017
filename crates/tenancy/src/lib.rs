//! Every PostgreSQL operation behind the `usualstore_tenant` resource.
//!
//! A tenant is a database `D` owned by the NOLOGIN group role `D_owner`, with the groups
//! `D_admin`, `D_developer` and `D_customer` for login users, locked-down privileges (PUBLIC may
//! not even connect), default privileges for tables added by later migrations, the store schema,
//! and a JSON comment on the database holding the tenant name, plan and status. Everything
//! works for a superuser operator and for a managed-PostgreSQL style operator with only
//! CREATEDB and CREATEROLE.
//!
//! Entry points: [`create_tenant`], [`read_tenant`], [`update_tenant`], [`delete_tenant`] for
//! tenants and [`create_user`], [`read_user`], [`update_user`], [`delete_user`] for their login
//! users, all taking a [`Server`].

mod catalog;
mod converge;
mod database;
mod emails;
mod error;
mod inventory;
mod lockdown;
mod metadata;
mod model;
mod names;
mod roles;
mod scram;
mod server;
mod service_plan;
mod sql;
mod tenant;
mod user;
mod waits;

pub use error::{TenantError, UserSetting};
pub use inventory::{TenantFilter, TenantSummary, list_tenants};
pub use lockdown::{
    LockdownStatus, Opening, apply_lockdown, public_may_connect, read_lockdown, remove_lockdown,
};
pub use metadata::TenantState;
pub use names::{
    MAX_DATABASE_NAME_LEN, MAX_TENANT_NAME_CHARS, NameError, RoleKind, RoleNames,
    validate_database_name, validate_identifier, validate_tenant_name,
};
pub use server::{
    DEFAULT_LOCK_TIMEOUT, PendingCloses, ReadSession, SEARCH_PATH, Server, Session,
    with_deferred_closes,
};
pub use service_plan::{ServicePlan, ServicePlanParseError};
pub use sql::{quote_ident, quote_literal};
pub use tenant::{
    TenantSpec, TenantStatus, create_tenant, delete_tenant, read_tenant, update_tenant,
};
pub use user::{
    MIN_PASSWORD_CHARS, PasswordCheck, UserRole, UserRoleParseError, UserSpec, UserStatus,
    create_user, delete_user, read_user, update_user, validate_connection_limit, validate_email,
    validate_password, validate_username, verifier_fingerprint,
};
pub use waits::{AdvisoryKey, LockHolder, LockTarget};
