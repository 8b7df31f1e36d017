//! Which host name a request was sent to, in the one form tenants are looked up by.
//!
//! The name is the client's to choose, so it is parsed strictly and compared only after
//! normalising: ASCII letters in lower case, the port and one trailing dot dropped
//! (`Shop.Example.com.:443` is `shop.example.com`). Anything that is not a plain DNS name or
//! IP literal (user info, percent-escapes, spaces, non-ASCII bytes, empty labels) matches no
//! tenant. Internationalised names arrive in their ASCII (`xn--`) form, which is how browsers
//! send them and how the tenants file must list them.
//!
//! `X-Forwarded-Host` is believed only from a trusted proxy (`TRUSTED_PROXIES`), and then only
//! its last entry (the one that proxy wrote); from anyone else it is ignored, as `X-Forwarded-For`
//! is. A request in absolute form (`GET http://a.example/ HTTP/1.1`) whose authority names a
//! different host than its `Host` header matches nothing: two answers to "which tenant" are
//! no answer.

use std::net::IpAddr;

use axum::http::header::HOST;
use axum::http::{HeaderMap, Uri};

use crate::config::IpNet;

const FORWARDED_HOST: &str = "x-forwarded-host";

/// Longest DNS name (RFC 1035), without the trailing dot.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// `value` (a `Host` header, an authority, a file's key) as a lookup key: lower case, no port,
/// no trailing dot. `None` when it is not a well-formed host name or IP literal.
pub fn normalise(value: &str) -> Option<String> {
    let value = value.trim();
    if value.starts_with('[') {
        // An IPv6 literal, with an optional port after the bracket.
        let end = value.find(']')?;
        let rest = &value[end + 1..];
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        let ip: std::net::Ipv6Addr = value[1..end].parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    let name = match value.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return None,
        None => value,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > MAX_LABEL
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
    }
    Some(name.to_ascii_lowercase())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The host a request was sent to, normalised; `None` when it names none or contradicts itself.
pub fn of_request(
    uri: &Uri,
    headers: &HeaderMap,
    peer: IpAddr,
    trusted_proxies: &[IpNet],
) -> Option<String> {
    let trusted = trusted_proxies
        .iter()
        .any(|net| net.contains(crate::config::canonical(peer)));
    if trusted && let Some(forwarded) = last_forwarded_host(headers) {
        return normalise(forwarded);
    }
    let mut values = headers.get_all(HOST).iter();
    let header = match (values.next(), values.next()) {
        (Some(value), None) => Some(normalise(value.to_str().ok()?)?),
        // Two Host headers: a smuggling attempt, never a browser.
        (Some(_), Some(_)) => return None,
        (None, _) => None,
    };
    let authority = match uri.authority() {
        Some(authority) => Some(normalise(authority.as_str())?),
        None => None,
    };
    match (header, authority) {
        (Some(header), Some(authority)) if header != authority => None,
        (Some(host), _) | (None, Some(host)) => Some(host),
        (None, None) => None,
    }
}

/// The last entry of the last `X-Forwarded-Host`: what the nearest proxy wrote.
fn last_forwarded_host(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get_all(FORWARDED_HOST).iter().next_back()?;
    let text = value.to_str().ok()?;
    text.rsplit(',').next().map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> Option<String> {
        normalise(value)
    }

    #[test]
    fn names_are_compared_in_one_form() {
        for same in [
            "shop.example.com",
            "SHOP.Example.COM",
            "shop.example.com.",
            "shop.example.com:8080",
            "Shop.Example.Com.:443",
            " shop.example.com ",
        ] {
            assert_eq!(host(same).as_deref(), Some("shop.example.com"), "{same}");
        }
        assert_eq!(
            host("xn--bcher-kva.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(host("127.0.0.1:4001").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("[::1]:4001").as_deref(), Some("[::1]"));
        assert_eq!(host("[0:0::1]").as_deref(), Some("[::1]"));
        for bad in [
            "",
            ".",
            "shop..example.com",
            "shop.example.com..",
            "user@shop.example.com",
            "shop.example.com:port",
            "shop.example.com:123456",
            "shop.example.com:",
            "bücher.example",
            "shop%2eexample.com",
            "shop example.com",
            "-shop.example.com",
            "shop.example.com/x",
            "[::1",
            "[::1]x",
            "[not-v6]",
        ] {
            assert_eq!(host(bad), None, "{bad:?}");
        }
        assert_eq!(host(&format!("{}.example", "a".repeat(64))), None);
    }

    #[test]
    fn forwarded_host_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, "internal.lb".parse().unwrap());
        headers.append(
            FORWARDED_HOST,
            "evil.example, Shop.Example.com".parse().unwrap(),
        );
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let uri: Uri = "/".parse().unwrap();
        let from = |peer: &str| of_request(&uri, &headers, peer.parse().unwrap(), &proxies);
        assert_eq!(from("10.1.2.3").as_deref(), Some("shop.example.com"));
        assert_eq!(from("203.0.113.5").as_deref(), Some("internal.lb"));
        assert_eq!(
            of_request(&uri, &headers, "10.1.2.3".parse().unwrap(), &[]).as_deref(),
            Some("internal.lb")
        );
    }

    #[test]
    fn ambiguous_or_missing_hosts_match_nothing() {
        let peer: IpAddr = "203.0.113.5".parse().unwrap();
        let relative: Uri = "/api/widgets".parse().unwrap();
        let absolute: Uri = "http://other.example/api/widgets".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(of_request(&relative, &headers, peer, &[]), None);
        assert_eq!(
            of_request(&absolute, &headers, peer, &[]).as_deref(),
            Some("other.example")
        );
        headers.insert(HOST, "shop.example.com".parse().unwrap());
        assert_eq!(of_request(&absolute, &headers, peer, &[]), None);
        let same: Uri = "http://SHOP.example.com:80/".parse().unwrap();
        assert_eq!(
            of_request(&same, &headers, peer, &[]).as_deref(),
            Some("shop.example.com")
        );
        headers.append(HOST, "other.example".parse().unwrap());
        assert_eq!(of_request(&relative, &headers, peer, &[]), None);
    }
}
