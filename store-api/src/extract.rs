//! Request extractors whose rejections use the API's error shape and name the field at fault.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::config::{IpNet, canonical};
use crate::error::ApiError;

/// A JSON body: 415 without a JSON content type, 413 over the body limit, 400 for malformed
/// JSON, a missing or unknown field, or a value of the wrong type (with `field` set).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&request) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "the body is larger than the limit of {} bytes",
                            crate::app::BODY_LIMIT
                        ),
                    )
                } else {
                    ApiError::bad_request("unreadable_body", rejection.body_text())
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(request: &Request) -> bool {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence.to_ascii_lowercase().ends_with("+json"))
}

/// Deserializes `bytes`, turning serde's complaint into a 400 that names the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(error) => {
            let path = error.path().to_string();
            return Err(describe_json_error(&path, error.inner()));
        }
    };
    deserializer.end().map_err(|error| {
        ApiError::bad_request("malformed_json", format!("malformed JSON: {error}"))
    })?;
    Ok(value)
}

fn describe_json_error(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("malformed JSON: {error}"))
        }
        Category::Data => {
            let message = error.to_string();
            let message = strip_position(&message);
            let parent = if path == "." { "" } else { path };
            // serde names missing and unknown fields in backquotes in the message, relative to
            // the object the path points at.
            let named = ["missing field `", "unknown field `"]
                .iter()
                .find_map(|prefix| {
                    let rest = message.strip_prefix(prefix)?;
                    let end = rest.find('`')?;
                    Some(&rest[..end])
                });
            match named {
                Some(name) => {
                    let missing = message.starts_with("missing");
                    // The path of an unknown field already ends with its name; a missing one's
                    // is the object it is missing from.
                    let field = if !missing && parent.ends_with(name) {
                        parent.to_owned()
                    } else if parent.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{parent}.{name}")
                    };
                    let code = if missing {
                        "missing_field"
                    } else {
                        "unknown_field"
                    };
                    ApiError::bad_request(code, format!("{field}: {message}")).with_field(field)
                }
                None if parent.is_empty() => {
                    ApiError::bad_request("invalid_body", format!("invalid body: {message}"))
                }
                None => ApiError::invalid(parent, format!("{parent}: {message}")),
            }
        }
    }
}

/// "… at line 1 column 20" helps nobody reading a field-level message.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(index) => &message[..index],
        None => message,
    }
}

/// A numeric `{id}` path segment (400 otherwise).
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<i64>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(_) => Err(ApiError::invalid("id", "id must be an integer")),
        }
    }
}

/// Query parameters (400 naming the parameter when one is malformed).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                let error = ApiError::bad_request("invalid_query", detail.clone());
                // axum reports "name: problem" for a parameter it could not parse.
                Err(match detail.split_once(": ") {
                    Some((name, _))
                        if !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        error.with_field(name)
                    }
                    _ => error,
                })
            }
        }
    }
}

/// The client's address: the connection's peer or, when the peer is a trusted proxy
/// (`TRUSTED_PROXIES`), the address it forwarded in `X-Forwarded-For`.
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let tenant = AppState::from_request_parts(parts, state).await?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(ClientAddress(client_address(
            peer,
            &parts.headers,
            &tenant.trusted_proxies,
        )))
    }
}

/// Walks `X-Forwarded-For` from the right (the entry the nearest proxy appended) past trusted
/// proxies: the first address not trusted is the client. Entries further left were written by
/// the client itself and are never believed; an entry that is not an address stops the walk at
/// the proxy that passed it on.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut hop = canonical(peer);
    if !is_trusted(hop) {
        return hop;
    }
    let values: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.as_bytes())
        .collect();
    for entry in values
        .iter()
        .rev()
        .flat_map(|value| value.rsplit(|b| *b == b','))
    {
        let Some(ip) = std::str::from_utf8(entry).ok().and_then(forwarded_ip) else {
            return hop;
        };
        if !is_trusted(ip) {
            return ip;
        }
        hop = ip;
    }
    hop
}

/// `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        currency: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        quantity: i32,
        payment: Option<Inner>,
    }

    fn field_of(body: &str) -> (String, Option<String>) {
        let error = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        (error.code.to_owned(), error.field)
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(
            field_of("{}"),
            ("missing_field".into(), Some("quantity".into()))
        );
        assert_eq!(
            field_of(r#"{"quantity": "x"}"#),
            ("invalid_field".into(), Some("quantity".into()))
        );
        assert_eq!(
            field_of(r#"{"quantity": 1, "payment": {}}"#),
            ("missing_field".into(), Some("payment.currency".into()))
        );
        assert_eq!(
            field_of(r#"{"quantity": 1, "colour": "red"}"#),
            ("unknown_field".into(), Some("colour".into()))
        );
        assert_eq!(
            field_of(r#"{"quantity": 1"#),
            ("malformed_json".into(), None)
        );
        assert_eq!(
            field_of(r#"{"quantity": 1} x"#),
            ("malformed_json".into(), None)
        );
        assert_eq!(field_of("[]"), ("invalid_body".into(), None));
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // Not from a trusted proxy: the peer, whatever the header says.
        assert_eq!(
            client_address(ip("198.51.100.1"), &headers, &proxies),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &[]),
            ip("10.0.0.1")
        );
        // Through two trusted proxies: the first untrusted entry from the right.
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &proxies),
            ip("203.0.113.9")
        );
        let mut garbage = HeaderMap::new();
        garbage.append(
            "x-forwarded-for",
            "not-an-ip, [2001:db8::7]:443".parse().unwrap(),
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &garbage, &proxies),
            ip("2001:db8::7")
        );
        let mut only_garbage = HeaderMap::new();
        only_garbage.append("x-forwarded-for", "unknown".parse().unwrap());
        assert_eq!(
            client_address(ip("10.0.0.1"), &only_garbage, &proxies),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &proxies),
            ip("10.0.0.1")
        );
    }
}
