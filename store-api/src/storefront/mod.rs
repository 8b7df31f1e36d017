//! The tenant's web front end, served by the same process as the API: the public catalogue as
//! server-rendered HTML (`/`, `/widgets/{id}`) and the back office (`/admin`), a page of plain
//! JavaScript modules that works through the JSON API with the signed-in user's bearer token.
//!
//! Safe by construction:
//! - pages are askama templates, checked at compile time, every value HTML-escaped;
//! - the catalogue reads through the API's own handlers ([`crate::routes::widgets`]), so its
//!   page size, cursor checks, timeouts and cached count are the API's;
//! - every response here carries [`CONTENT_SECURITY_POLICY`] (scripts and styles from this
//!   origin only, no inline script or style, DOM sinks locked by Trusted Types, no framing) and
//!   the other headers of [`security_headers`];
//! - nothing here sets a cookie or accepts a POST: the back office authenticates each API call
//!   with `Authorization: Bearer`, which browsers never attach to a request by themselves, so a
//!   forged cross-site request carries no credentials (see the README's storefront section).

mod admin;
mod assets;
mod catalogue;
pub mod present;

use askama::Template;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::error::{ApiError, REQUEST};

/// Scripts, styles and API calls from this origin only; no inline script or style (not even
/// hashed: none is needed); product images from this origin or any http(s) host (the tenant's
/// image URLs); no plugins, frames, or forms posting elsewhere. `require-trusted-types-for`
/// makes the browser refuse HTML strings in DOM sinks such as `innerHTML`, and `trusted-types
/// 'none'` allows no policy that could turn one into trusted HTML: the back office can only
/// build elements and text nodes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' https: http:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; \
     trusted-types 'none'";

/// The storefront's routes; `crate::app::router` merges them with the API's, so they pass
/// through the same middleware (request id, timeout, metrics, access log).
pub fn routes() -> Router<std::sync::Arc<crate::registry::Registry>> {
    Router::new()
        .route("/", get(catalogue::index))
        .route("/widgets/{id}", get(catalogue::widget))
        .route("/admin", get(admin::shell))
        .route("/static/{file}", get(assets::serve))
        .layer(middleware::map_response(security_headers))
}

/// Headers on every storefront response, error pages included.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    // For browsers that predate `frame-ancestors`.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Product images may live on other hosts: they learn nothing about the page they are on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // A page of another site that opened this one gets no handle on it, and vice versa.
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// What every page shows: the tenant's name, and an accent colour chosen by it (one of the
/// stylesheet's `hue-0` … `hue-7` classes: a per-tenant colour without inline style).
pub struct Brand {
    pub shop: String,
    pub hue: u8,
}

impl Brand {
    fn of(state: &AppState) -> Brand {
        let shop = state.tenant.get().to_string();
        Brand {
            hue: hue_of(&shop),
            shop,
        }
    }
}

/// FNV-1a of the name, folded to 0..8: stable across releases and processes.
fn hue_of(name: &str) -> u8 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 8) as u8
}

/// A rendered page as a response with `status`.
fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "a storefront page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                "internal error",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    brand: Brand,
    status: u16,
    heading: &'static str,
    message: String,
    code: &'static str,
    request_id: String,
}

/// An API error as a page: the same status, code and request id as the JSON would carry, in
/// words a shopper can read. `Retry-After` stays on 503s and 429s.
fn error_page(state: &AppState, error: ApiError) -> Response {
    let heading = match error.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "That address is not quite right",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            "The shop is busy; please try again in a moment"
        }
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    let request_id = REQUEST
        .try_with(|context| context.request_id.as_str().to_owned())
        .unwrap_or_default();
    let page = ErrorPage {
        brand: Brand::of(state),
        status: error.status.as_u16(),
        heading,
        message: error.message.clone(),
        code: error.code,
        request_id,
    };
    let mut response = html(error.status, &page);
    // The JSON error's headers (Retry-After) carry over.
    let json = error.into_response();
    if let Some(value) = json.headers().get(header::RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, value.clone());
    }
    response
}
