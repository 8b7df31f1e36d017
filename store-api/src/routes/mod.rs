//! The handlers, one module per resource.

pub mod customers;
pub mod operations;
pub mod orders;
pub mod reference;
pub mod session;
pub mod users;
pub mod widgets;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// 201 with the new resource and where it lives.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
