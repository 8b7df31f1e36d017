//! Signing in and out: bearer tokens for application users.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::{self, AuthUser};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientAddress};
use crate::model::{Timestamp, User};
use crate::routes::Json;
use crate::token_listener::{self, CHANNEL, Ended};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    email: String,
    password: String,
}

/// Hand-written so a stray `{:?}` can never print the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Authenticated {
    pub token: String,
    #[schema(schema_with = crate::openapi::bearer)]
    pub token_type: &'static str,
    pub expires_at: Timestamp,
    pub user: User,
    pub tenant: String,
}

/// The user row and password hash of an e-mail (compared case-insensitively).
const SIGN_IN_LOOKUP: &str = "SELECT u.id, u.first_name, u.last_name, u.email, u.role, \
     u.created_at, u.updated_at, c.password_hash FROM public.users u \
     LEFT JOIN public.user_credentials c ON c.user_id = u.id WHERE lower(u.email) = lower($1)";

/// Email and password for a bearer token. Only the token's SHA-256 is stored, with its expiry.
///
/// Failed sign-ins are throttled per e-mail and per client address (429 `too_many_attempts`,
/// see [`crate::throttle`]); the check comes first, before the database or Argon2 is asked.
#[utoipa::path(
    post, path = "/api/authenticate", tag = "auth", operation_id = "authenticate",
    description = "Failed sign-ins are throttled per e-mail and per client address (429 `too_many_attempts`).",
    summary = "Exchange email and password for a bearer token",
    request_body = Credentials,
    responses((status = 200, description = "a token and its expiry", body = Authenticated), (status = 401), (status = 403), (status = 429)),
)]
pub async fn authenticate(
    state: AppState,
    ClientAddress(address): ClientAddress,
    ApiJson(credentials): ApiJson<Credentials>,
) -> ApiResult<Json<Authenticated>> {
    let email = credentials.email.trim();
    if email.is_empty() {
        return Err(ApiError::invalid("email", "email must not be empty"));
    }
    if credentials.password.is_empty() {
        return Err(ApiError::invalid("password", "password must not be empty"));
    }
    let attempt = match state.throttle.begin(email, address) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            tracing::info!("sign-in refused: too many failed attempts");
            return Err(ApiError::too_many_attempts(throttled.retry_after));
        }
    };
    // The connection goes back to the pool while Argon2 runs (tens of milliseconds of CPU).
    let row = match lookup(&state, email).await {
        Ok(row) => row,
        Err(error) => {
            attempt.not_tried();
            return Err(error);
        }
    };
    // A user without credentials cannot sign in; it is checked against the dummy hash like an
    // unknown email, so the answer takes as long.
    let stored = match row.as_ref().map(|row| row.try_get::<_, Option<String>>(7)) {
        Some(Ok(stored)) => stored,
        Some(Err(error)) => {
            attempt.not_tried();
            return Err(error.into());
        }
        None => None,
    };
    match state.hasher.verify(credentials.password, stored).await {
        Ok(true) => attempt.succeeded(),
        Ok(false) => {
            attempt.failed();
            tracing::info!("authentication refused");
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "unknown email or wrong password",
            ));
        }
        Err(error) => {
            attempt.not_tried();
            return Err(error);
        }
    }
    let Some(row) = row else {
        return Err(ApiError::internal());
    };
    let user = User::from_row(&row)?;
    let token = auth::new_token();
    let client = state.pool.get().await?;
    let insert = client
        .prepare_cached(
            "INSERT INTO public.tokens (user_id, name, email, token_hash, expiry) \
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING expiry",
        )
        .await?;
    let name = format!("{} {}", user.first_name, user.last_name);
    let ttl_seconds = state.token_ttl.as_secs_f64();
    let expiry = client
        .query_one(
            &insert,
            &[
                &user.id,
                &name,
                &user.email,
                &&auth::token_hash(&token)[..],
                &ttl_seconds,
            ],
        )
        .await?;
    tracing::info!(user_id = user.id, "authenticated");
    forget_expired_tokens(&client, user.id).await;
    Ok(Json(Authenticated {
        token,
        token_type: "Bearer",
        expires_at: expiry.try_get(0)?,
        user,
        tenant: state.tenant.get().to_string(),
    }))
}

async fn lookup(state: &AppState, email: &str) -> Result<Option<tokio_postgres::Row>, ApiError> {
    let client = state.shared.get().await?;
    let statement = client.prepare_cached(SIGN_IN_LOOKUP).await?;
    Ok(client.query_opt(&statement, &[&email]).await?)
}

/// Each sign-in clears the user's tokens that have ended, so the table holds about one row per
/// live session instead of one per sign-in ever made. Best effort: a DSN without DELETE on
/// `tokens` (the developer role) keeps them, which costs space, not correctness.
async fn forget_expired_tokens(client: &deadpool_postgres::Client, user_id: i64) {
    let statement = match client
        .prepare_cached("DELETE FROM public.tokens WHERE user_id = $1 AND expiry <= now()")
        .await
    {
        Ok(statement) => statement,
        Err(error) => {
            tracing::debug!(%error, "could not prepare the expired-token cleanup");
            return;
        }
    };
    match client.execute(&statement, &[&user_id]).await {
        Ok(0) => {}
        Ok(removed) => tracing::debug!(user_id, removed, "removed expired tokens"),
        Err(error) => tracing::debug!(%error, "expired tokens kept"),
    }
}

/// Ends the token whose SHA-256 is $1.
const END_TOKEN: &str =
    "UPDATE public.tokens SET expiry = now() WHERE token_hash = $1 AND expiry > now()";

/// Ends the token at once. An UPDATE, not a DELETE, so a developer-role DSN (no DELETE) can
/// still log users out. The same statement tells the other instances (NOTIFY goes out when it
/// commits, see [`crate::token_listener`]); one round trip, as before.
#[utoipa::path(
    post, path = "/api/logout", tag = "auth", operation_id = "logout",
    summary = "End the presented token",
    security(("bearer" = [])),
    responses((status = 204, description = "logged out")),
)]
pub async fn logout(state: AppState, user: AuthUser) -> ApiResult<StatusCode> {
    let client = state.pool.get().await?;
    let statement = client
        .prepare_cached(
            "WITH ended AS (UPDATE public.tokens SET expiry = now() \
             WHERE token_hash = $1 AND expiry > now() RETURNING 1) \
             SELECT pg_catalog.pg_notify($2, $3)",
        )
        .await?;
    let payload = Ended::Token(user.token_hash).payload();
    match client
        .execute(&statement, &[&&user.token_hash[..], &CHANNEL, &payload])
        .await
    {
        Ok(_) => {}
        Err(error) if token_listener::queue_full(&error) => {
            token_listener::warn_unannounced();
            let plain = client.prepare_cached(END_TOKEN).await?;
            client.execute(&plain, &[&&user.token_hash[..]]).await?;
        }
        Err(error) => return Err(error.into()),
    }
    state.tokens.forget_token(&user.token_hash);
    tracing::info!(user_id = user.id, "logged out");
    Ok(StatusCode::NO_CONTENT)
}
