//! The stylesheet and the back office's JavaScript modules, compiled into the binary: one image,
//! no files to ship beside it, no build step. Looked up by exact name in a fixed table, so no
//! request can reach the file system.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    Asset {
        name: "store.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/store.css"),
    },
    Asset {
        name: "admin.js",
        content_type: JS,
        body: include_bytes!("../../static/admin.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_bytes!("../../static/api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_bytes!("../../static/dom.js"),
    },
];

/// An ETag per asset (a hash of its bytes), computed on first use.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                HeaderValue::from_str(&format!("\"{hex}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
            })
            .collect()
    })
}

/// `If-None-Match` names this ETag (or `*`).
fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag.as_bytes() == etag.as_bytes())
}

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == file) else {
        return (
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            "no such file",
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let etag = etags()[index].clone();
    // Revalidated on every use: a new release is picked up at once, an unchanged file costs a
    // 304 without a body.
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if matches(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), cache]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::ETAG, etag),
            cache,
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_an_etag_and_if_none_match_is_read_as_a_list() {
        assert_eq!(etags().len(), ASSETS.len());
        let etag = etags()[0].clone();
        let mut headers = HeaderMap::new();
        assert!(!matches(&headers, &etag));
        let listed = format!("\"other\", W/{}", etag.to_str().unwrap());
        headers.insert(header::IF_NONE_MATCH, listed.parse().unwrap());
        assert!(matches(&headers, &etag));
        headers.insert(header::IF_NONE_MATCH, "*".parse().unwrap());
        assert!(matches(&headers, &etag));
    }
}
