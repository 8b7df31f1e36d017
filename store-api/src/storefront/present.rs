//! How catalogue values are shown: prices, stock, image addresses, short descriptions. Pure
//! functions, so the rules an attacker would probe (image URLs above all) are unit-tested.

/// At or below this many units a widget shows "only N left".
pub const LOW_STOCK: i32 = 5;

/// Longest image address put into a page.
const MAX_IMAGE_URL: usize = 2048;

/// Integer cents as `12.50` (the store keeps no currency per widget; orders carry theirs).
pub fn price(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    InStock,
    Low(i32),
    SoldOut,
}

impl Stock {
    pub fn of(inventory_level: i32) -> Stock {
        match inventory_level {
            level if level <= 0 => Stock::SoldOut,
            level if level <= LOW_STOCK => Stock::Low(level),
            _ => Stock::InStock,
        }
    }

    pub fn label(self) -> String {
        match self {
            Stock::InStock => "in stock".to_owned(),
            Stock::Low(n) => format!("only {n} left"),
            Stock::SoldOut => "sold out".to_owned(),
        }
    }

    /// The stylesheet's class for the badge.
    pub fn class(self) -> &'static str {
        match self {
            Stock::InStock => "stock-in",
            Stock::Low(_) => "stock-low",
            Stock::SoldOut => "stock-out",
        }
    }
}

/// The widget's `image` if it is safe to put in `src`: an absolute `http:`/`https:` address with
/// a host, or a path on this site (`/images/x.png`). Anything else (`javascript:`, `data:`,
/// `//other.host` and `/\other.host`, which browsers read as another host, text with spaces or
/// control characters, a relative path that would mean something else on every page) is not
/// shown. Escaping is the template's job; this decides whether there is an image at all.
pub fn image_url(raw: &str) -> Option<&str> {
    let url = raw.trim();
    if url.is_empty()
        || url.len() > MAX_IMAGE_URL
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let absolute = ["https://", "http://"]
        .into_iter()
        .find_map(|scheme| lower.starts_with(scheme).then(|| &url[scheme.len()..]));
    match absolute {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            // `http://@/x` or `http:///x`: no host to fetch from.
            let host = host.rsplit('@').next().unwrap_or("");
            (!host.is_empty()).then_some(url)
        }
        None if url.starts_with('/') && !url.starts_with("//") => Some(url),
        None => None,
    }
}

/// The first `max` characters of `text` on one line, with an ellipsis when cut.
pub fn summary(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        // Prefer a word boundary unless it throws most of the text away.
        Some(space) if space > max / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_cents() {
        assert_eq!(price(0), "0.00");
        assert_eq!(price(5), "0.05");
        assert_eq!(price(1250), "12.50");
        assert_eq!(price(123_456_789), "1234567.89");
        assert_eq!(price(-5), "-0.05");
        assert_eq!(price(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn stock_has_three_states() {
        assert_eq!(Stock::of(0).label(), "sold out");
        assert_eq!(Stock::of(-3).label(), "sold out");
        assert_eq!(Stock::of(1).label(), "only 1 left");
        assert_eq!(
            Stock::of(LOW_STOCK).label(),
            format!("only {LOW_STOCK} left")
        );
        assert_eq!(Stock::of(LOW_STOCK + 1).label(), "in stock");
        assert_eq!(Stock::of(LOW_STOCK + 1).class(), "stock-in");
    }

    #[test]
    fn only_web_and_local_images_are_shown() {
        for good in [
            "https://img.example.com/a.png",
            "HTTP://img.example.com/a.png?x=1&y=<2>",
            "http://user@img.example.com:8080/a.png",
            "/images/a.png",
            "  /images/padded.png  ",
        ] {
            assert!(image_url(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "data:image/png;base64,AAAA",
            "vbscript:x",
            "//evil.example/a.png",
            "/\\evil.example/a.png",
            "https:evil.example",
            "https://",
            "http:///a.png",
            "http://@/a.png",
            "images/a.png",
            "https://ok.example/a b.png",
            "https://ok.example/a\u{0}.png",
        ] {
            assert_eq!(image_url(bad), None, "{bad:?}");
        }
        assert_eq!(
            image_url(&format!("https://x.example/{}", "a".repeat(MAX_IMAGE_URL))),
            None
        );
    }

    #[test]
    fn summaries_cut_at_words() {
        assert_eq!(summary("short\n\n text", 20), "short text");
        assert_eq!(
            summary("the quick brown fox jumps over the lazy dog", 20),
            "the quick brown fox…"
        );
        assert_eq!(summary("ééééééééééé", 4), "éééé…");
    }
}
