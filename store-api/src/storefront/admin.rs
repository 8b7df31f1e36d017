//! `/admin`: the back office's page. It is a shell: the signed-in work happens in
//! `/static/admin.js`, which calls the JSON API with the user's bearer token, so every rule
//! (roles, limits, throttling) is the API's and nothing here needs a session of its own.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{Brand, html};
use crate::app::AppState;

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    brand: Brand,
}

pub async fn shell(state: AppState) -> Response {
    let mut response = html(
        StatusCode::OK,
        &AdminPage {
            brand: Brand::of(&state),
        },
    );
    // Nothing secret is in it, but a shared cache has no business keeping staff pages.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
