//! Application users (people who sign in to the store), managed by admins.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::{self, AuthUser, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Id};
use crate::model::{List, PageParams, USER_COLUMNS, User, email, required_text};
use crate::routes::Json;
use crate::routes::{Table, Total, created, table_page};
use crate::token_listener::{self, CHANNEL, Ended};

const MAX_NAME_CHARS: usize = 100;

#[utoipa::path(
    get, path = "/api/users", tag = "users", operation_id = "list_users",
    summary = "List application users (admin)",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "a page of users", body = List<User>), (status = 400)),
)]
pub async fn list(
    state: AppState,
    user: AuthUser,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<List<User>>> {
    user.require_admin("listing users")?;
    let table = Table {
        name: "users",
        columns: USER_COLUMNS,
        from_row: User::from_row,
        id_of: |user| user.id,
    };
    table_page(&state, &table, params.page()?, Total::Counted, None).await
}

#[utoipa::path(
    get, path = "/api/users/{id}", tag = "users", operation_id = "get_user",
    summary = "One application user (admin)",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "the user", body = User), (status = 400), (status = 404)),
)]
pub async fn get(state: AppState, user: AuthUser, Id(id): Id) -> ApiResult<Json<User>> {
    user.require_admin("reading users")?;
    let client = state.shared.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM public.users WHERE id = $1"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("user", id))?;
    Ok(Json(User::from_row(&row)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub first_name: String,
    pub last_name: String,
    #[schema(format = Email)]
    pub email: String,
    #[schema(min_length = 8)]
    pub password: String,
    #[schema(schema_with = crate::openapi::role)]
    pub role: String,
}

/// Keeps the password out of any debug output.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn parse_role(value: &str) -> Result<Role, ApiError> {
    Role::parse(value.trim())
        .ok_or_else(|| ApiError::invalid("role", "role must be admin, developer or customer"))
}

/// Validates, hashes the password and inserts: shared by `POST /api/users` and
/// `store-api user create`. The connection is taken only after hashing, so slow hashes do not
/// hold pooled connections.
pub async fn insert_user(
    pool: &deadpool_postgres::Pool,
    hasher: &auth::Hasher,
    new: NewUser,
) -> ApiResult<User> {
    let first_name = required_text("first_name", &new.first_name, MAX_NAME_CHARS)?;
    let last_name = required_text("last_name", &new.last_name, MAX_NAME_CHARS)?;
    let email = email("email", &new.email)?;
    let role = parse_role(&new.role)?;
    let hash = hasher.hash(new.password).await?;
    let client = pool.get().await?;
    // One statement: the user and its credentials exist together or not at all.
    let row = client
        .query_one(
            &format!(
                "WITH u AS (INSERT INTO public.users (first_name, last_name, email, role) \
                 VALUES ($1, $2, $3, $5) RETURNING {USER_COLUMNS}), \
                 c AS (INSERT INTO public.user_credentials (user_id, password_hash) \
                 SELECT id, $4 FROM u) \
                 SELECT {USER_COLUMNS} FROM u"
            ),
            &[&first_name, &last_name, &email, &hash, &role.as_str()],
        )
        .await?;
    Ok(User::from_row(&row)?)
}

#[utoipa::path(
    post, path = "/api/users", tag = "users", operation_id = "create_user",
    summary = "Add an application user (admin)",
    security(("bearer" = [])),
    request_body = NewUser,
    responses((status = 201, description = "the new user", body = User), (status = 409)),
)]
pub async fn create(
    state: AppState,
    user: AuthUser,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Response> {
    user.require_admin("adding users")?;
    let created_user = insert_user(&state.pool, &state.hasher, body).await?;
    tracing::info!(
        new_user_id = created_user.id,
        user_id = user.id,
        "user added"
    );
    Ok(created(
        format!("/api/users/{}", created_user.id),
        created_user,
    ))
}

/// Fields left out keep their value. A new password ends the user's sessions.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    first_name: Option<String>,
    last_name: Option<String>,
    #[schema(format = Email)]
    email: Option<String>,
    #[schema(min_length = 8)]
    password: Option<String>,
    #[schema(schema_with = crate::openapi::role)]
    role: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/users/{id}", tag = "users", operation_id = "update_user",
    summary = "Change a user; a new password ends their sessions (admin)",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UserChanges,
    responses((status = 200, description = "the user", body = User), (status = 404), (status = 409)),
)]
pub async fn update(
    state: AppState,
    user: AuthUser,
    Id(id): Id,
    ApiJson(body): ApiJson<UserChanges>,
) -> ApiResult<Json<User>> {
    user.require_admin("changing users")?;
    let first_name = body
        .first_name
        .as_deref()
        .map(|v| required_text("first_name", v, MAX_NAME_CHARS))
        .transpose()?;
    let last_name = body
        .last_name
        .as_deref()
        .map(|v| required_text("last_name", v, MAX_NAME_CHARS))
        .transpose()?;
    let new_email = body
        .email
        .as_deref()
        .map(|v| email("email", v))
        .transpose()?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    if id == user.id && role.is_some_and(|role| role != Role::Admin) {
        return Err(ApiError::conflict(
            "own_role",
            "admins cannot take their own admin role away (another admin can)",
        ));
    }
    let hash = match body.password {
        Some(password) => Some(state.hasher.hash(password).await?),
        None => None,
    };
    let change = Change {
        id,
        first_name,
        last_name,
        email: new_email,
        hash,
        role,
    };
    let mut client = state.pool.get().await?;
    let row = match change.write(&mut client, true).await {
        Err(error) if token_listener::queue_full(&error) => {
            token_listener::warn_unannounced();
            change.write(&mut client, false).await?
        }
        written => written?,
    }
    .ok_or_else(|| ApiError::not_found("user", id))?;
    // Tokens remembered for this user carry the old role (or a password now changed).
    state.tokens.forget_user(id);
    tracing::info!(changed_user_id = id, user_id = user.id, "user changed");
    Ok(Json(User::from_row(&row)?))
}

/// A user's validated changes.
struct Change {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    /// The new password's hash.
    hash: Option<String>,
    role: Option<Role>,
}

impl Change {
    /// One transaction: the row, the password (which ends the user's tokens) and, when
    /// `announce`, the notification that makes other instances forget the user's tokens when it
    /// commits. `None`: no such user.
    async fn write(
        &self,
        client: &mut deadpool_postgres::Object,
        announce: bool,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        let id = self.id;
        let transaction = client.transaction().await?;
        let statement = transaction
            .prepare_cached(&format!(
                "WITH c AS (INSERT INTO public.user_credentials (user_id, password_hash) \
                 SELECT id, $5::text FROM public.users WHERE id = $1 AND $5::text IS NOT NULL \
                 ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash) \
                 UPDATE public.users SET first_name = coalesce($2, first_name), \
                 last_name = coalesce($3, last_name), email = coalesce($4, email), \
                 role = coalesce($6, role) WHERE id = $1 RETURNING {USER_COLUMNS}"
            ))
            .await?;
        let row = transaction
            .query_opt(
                &statement,
                &[
                    &id,
                    &self.first_name,
                    &self.last_name,
                    &self.email,
                    &self.hash,
                    &self.role.map(Role::as_str),
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if self.hash.is_some() {
            let expire = transaction
                .prepare_cached(
                    "UPDATE public.tokens SET expiry = now() WHERE user_id = $1 AND expiry > now()",
                )
                .await?;
            transaction.execute(&expire, &[&id]).await?;
        }
        if announce {
            token_listener::announce(&transaction, Ended::User(id)).await?;
        }
        transaction.commit().await?;
        Ok(Some(row))
    }
}

#[utoipa::path(
    delete, path = "/api/users/{id}", tag = "users", operation_id = "delete_user",
    summary = "Delete a user and their tokens (admin; not yourself)",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 400), (status = 404), (status = 409)),
)]
pub async fn delete(state: AppState, user: AuthUser, Id(id): Id) -> ApiResult<StatusCode> {
    user.require_admin("deleting users")?;
    if id == user.id {
        return Err(ApiError::conflict(
            "own_account",
            "admins cannot delete their own account (another admin can)",
        ));
    }
    let client = state.pool.get().await?;
    // Its tokens go with it (ON DELETE CASCADE); other instances hear of it when this commits,
    // and only if a user was deleted (one row per deleted user, none otherwise).
    let statement = client
        .prepare_cached(
            "WITH gone AS (DELETE FROM public.users WHERE id = $1 RETURNING id) \
             SELECT pg_catalog.pg_notify($2, $3) FROM gone",
        )
        .await?;
    let payload = Ended::User(id).payload();
    let deleted = match client.execute(&statement, &[&id, &CHANNEL, &payload]).await {
        Err(error) if token_listener::queue_full(&error) => {
            token_listener::warn_unannounced();
            let plain = client
                .prepare_cached("DELETE FROM public.users WHERE id = $1")
                .await?;
            client.execute(&plain, &[&id]).await?
        }
        deleted => deleted?,
    };
    if deleted == 0 {
        return Err(ApiError::not_found("user", id));
    }
    state.tokens.forget_user(id);
    tracing::info!(deleted_user_id = id, user_id = user.id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
