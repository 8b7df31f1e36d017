//! Every error a client sees, in one JSON shape:
//!
//! ```json
//! {"error": {"status": 404, "code": "not_found", "message": "widget 7 does not exist",
//!            "field": null, "request_id": "5f0c…"}, "tenant": "Building Shop Inc."}
//! ```
//!
//! `code` is stable and meant for programs; `message` is for people; `field` names the request
//! field at fault (400s), otherwise it is null.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::{self, Failure};

/// A request's id: the client's `X-Request-Id` when it is up to 64 safe characters, else 16
/// random hex digits. Kept inline: no allocation per request.
#[derive(Clone, Copy)]
pub struct RequestId {
    bytes: [u8; 64],
    len: u8,
}

impl RequestId {
    /// The client's id, if it is fit to repeat in logs and headers.
    pub fn from_client(value: &[u8]) -> Option<RequestId> {
        if value.is_empty()
            || value.len() > 64
            || !value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        {
            return None;
        }
        let mut bytes = [0u8; 64];
        bytes[..value.len()].copy_from_slice(value);
        Some(RequestId {
            bytes,
            len: value.len() as u8,
        })
    }

    pub fn random() -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 64];
        let value: u64 = rand::random();
        for (index, byte) in bytes[..16].iter_mut().enumerate() {
            *byte = HEX[((value >> (60 - 4 * index)) & 0xf) as usize];
        }
        RequestId { bytes, len: 16 }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request middleware knows about the request being served, for error bodies.
#[derive(Clone)]
pub struct RequestContext {
    pub request_id: RequestId,
    /// `None` when the request names no tenant this process serves (or the operations port
    /// of a router).
    pub tenant: Option<Arc<str>>,
    /// When the request timeout ends the request.
    pub deadline: std::time::Instant,
}

/// Time left before the request timeout ends the request being served (`None` outside one).
pub fn time_left() -> Option<std::time::Duration> {
    REQUEST
        .try_with(|context| {
            context
                .deadline
                .saturating_duration_since(std::time::Instant::now())
        })
        .ok()
}

tokio::task_local! {
    pub static REQUEST: RequestContext;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for `Retry-After` (503s say 1 without it).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 429 `too_many_attempts`: failed sign-ins over the limit; `Retry-After` says when the
    /// oldest counted failure leaves the window.
    pub fn too_many_attempts(retry_after: std::time::Duration) -> ApiError {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed sign-ins; try again in {seconds} s"),
        );
        error.retry_after = Some(seconds);
        error
    }

    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// 400 naming the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message).with_field(field)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str, id: i64) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} {id} does not exist"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the log has details under this request id",
        )
    }

    fn from_failure(failure: Failure, detail: &str, constraint: Option<&str>) -> ApiError {
        match failure {
            Failure::Unavailable => {
                tracing::warn!(error = detail, "database unavailable");
                ApiError::unavailable(
                    "database_unavailable",
                    "the database is unavailable; try again shortly",
                )
            }
            Failure::Busy => ApiError::unavailable(
                "database_busy",
                "every database connection is busy; try again shortly",
            ),
            Failure::TimedOut => ApiError::unavailable(
                "timeout",
                "the database did not answer in time; try again shortly",
            ),
            Failure::Contention => ApiError::unavailable(
                "contention",
                "the change collided with another one; try again",
            ),
            Failure::PermissionDenied => ApiError::new(
                StatusCode::FORBIDDEN,
                "database_permission_denied",
                "the database user this service connects as is not allowed to do this (a \
                 read-only DSN cannot write, and only an admin DSN may read sign-ins and tokens)",
            ),
            Failure::Duplicate => ApiError::conflict(
                "duplicate",
                match constraint {
                    Some("customers_email_key") => "a customer with this email already exists",
                    Some("users_email_key") => "a user with this email already exists",
                    _ => "a record with this value already exists",
                },
            ),
            Failure::Referenced => ApiError::conflict(
                "referenced",
                "the record is referenced by orders and cannot be removed",
            ),
            Failure::InvalidValue => {
                let error = ApiError::bad_request(
                    "invalid_value",
                    format!("the database rejected a value: {detail}"),
                );
                match constraint.and_then(field_of_constraint) {
                    Some(field) => error.with_field(field),
                    None => error,
                }
            }
            Failure::Internal => {
                tracing::error!(error = detail, "database error");
                ApiError::internal()
            }
        }
    }
}

/// `widgets_price_cents_check` → `price_cents` (PostgreSQL's default check constraint names).
fn field_of_constraint(constraint: &str) -> Option<String> {
    let rest = constraint.strip_suffix("_check")?;
    let (_, column) = rest.split_once('_')?;
    Some(column.to_owned())
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> ApiError {
        ApiError::from_failure(
            db::classify(&error),
            &db::describe(&error),
            db::constraint(&error),
        )
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> ApiError {
        let constraint = match &error {
            deadpool_postgres::PoolError::Backend(inner) => db::constraint(inner),
            _ => None,
        };
        let detail = match &error {
            deadpool_postgres::PoolError::Backend(inner) => db::describe(inner),
            other => other.to_string(),
        };
        ApiError::from_failure(db::classify_pool(&error), &detail, constraint)
    }
}

/// Every error answer: `{"error": {…}, "tenant": …}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    #[schema(inline)]
    error: Detail<'a>,
    tenant: Option<&'a str>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Detail<'a> {
    status: u16,
    /// Stable, for programs.
    code: &'a str,
    message: &'a str,
    /// The request's field at fault, if one is.
    field: Option<&'a str>,
    request_id: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let context = REQUEST.try_with(Clone::clone).ok();
        let body = ErrorBody {
            error: Detail {
                status: self.status.as_u16(),
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                request_id: context.as_ref().map(|c| c.request_id.as_str()),
            },
            tenant: context.as_ref().and_then(|c| c.tenant.as_deref()),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match self.retry_after {
            Some(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            None => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_constraint_names_give_the_column() {
        assert_eq!(
            field_of_constraint("widgets_price_cents_check").as_deref(),
            Some("price_cents")
        );
        assert_eq!(
            field_of_constraint("customers_email_check").as_deref(),
            Some("email")
        );
        assert_eq!(field_of_constraint("customers_email_key"), None);
    }

    #[test]
    fn request_ids_are_safe_to_repeat() {
        assert_eq!(
            RequestId::from_client(b"client-abc.123").map(|id| id.as_str().to_owned()),
            Some("client-abc.123".to_owned())
        );
        assert!(RequestId::from_client(b"a b").is_none());
        assert!(RequestId::from_client(&[b'a'; 65]).is_none());
        assert!(RequestId::from_client(b"").is_none());
        let random = RequestId::random();
        assert_eq!(random.as_str().len(), 16);
        assert!(random.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(random.as_str(), RequestId::random().as_str());
    }
}
