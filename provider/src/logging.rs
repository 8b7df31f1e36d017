//! Logs as hclog JSON lines on stderr.
//!
//! go-plugin reads the provider's stderr and re-logs every line that parses as hclog JSON at the level the line
//! names, so `TF_LOG=DEBUG` / `TF_LOG_PROVIDER=TRACE` show our events at the right level. Anything else on stderr
//! would be logged as unstructured debug noise, and anything on stdout before the handshake line breaks the
//! handshake, so this layer is the only writer.

use std::io::Write as _;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Targets whose events we pass at the requested level; other crates (h2, hyper, rustls, tokio-postgres) are
/// capped at WARN: their debug output is noise for an operator, and tokio-postgres logs statement text.
const OWN_TARGET_PREFIXES: &[&str] = &["terraform_provider_usualstore", "usualstore_"];

/// Installs the hclog layer as the global subscriber. The level comes from `TF_LOG_PROVIDER`, then `TF_LOG`, as
/// Terraform itself reads them; unset means WARN so an unlogged run pays almost nothing.
pub fn init() {
    let level = level_from_env(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
    );
    // A second init (tests) keeps the first subscriber, which is what we want.
    let _ = tracing_subscriber::registry()
        .with(HclogLayer { max_level: level })
        .try_init();
}

fn level_from_env(provider: Option<&str>, general: Option<&str>) -> Level {
    let chosen = provider
        .filter(|v| !v.trim().is_empty())
        .or(general.filter(|v| !v.trim().is_empty()));
    match chosen.map(|v| v.trim().to_ascii_uppercase()) {
        None => Level::WARN,
        Some(v) => match v.as_str() {
            "ERROR" => Level::ERROR,
            "WARN" => Level::WARN,
            "INFO" => Level::INFO,
            "DEBUG" => Level::DEBUG,
            // TRACE, JSON, "1" and anything unrecognised: Terraform treats them as TRACE.
            _ => Level::TRACE,
        },
    }
}

struct HclogLayer {
    max_level: Level,
}

impl HclogLayer {
    fn allows(&self, level: &Level, target: &str) -> bool {
        let own = OWN_TARGET_PREFIXES.iter().any(|p| target.starts_with(p));
        let cap = if own {
            self.max_level
        } else {
            std::cmp::min_by_key(self.max_level, Level::WARN, |l| level_rank(*l))
        };
        level_rank(*level) <= level_rank(cap)
    }
}

/// ERROR = 0 … TRACE = 4: a plain ordering that does not depend on how `tracing` orders `Level`.
fn level_rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.allows(metadata.level(), metadata.target())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.allows(meta.level(), meta.target()) {
            return;
        }
        let line = format_line(event, SystemTime::now());
        let mut stderr = std::io::stderr().lock();
        // A closed stderr leaves nowhere to report the failure; dropping the line is all we can do.
        let _ = stderr.write_all(line.as_bytes());
    }
}

fn format_line(event: &Event<'_>, now: SystemTime) -> String {
    let meta = event.metadata();
    let mut fields = FieldCollector::default();
    event.record(&mut fields);
    let mut object = Map::new();
    object.insert(
        "@level".into(),
        Value::String(hclog_level(*meta.level()).into()),
    );
    object.insert("@message".into(), Value::String(fields.message));
    object.insert("@timestamp".into(), Value::String(timestamp(now)));
    object.insert("@module".into(), Value::String(module_name(meta.target())));
    for (k, v) in fields.extra {
        object.insert(k, v);
    }
    let mut line = Value::Object(object).to_string();
    line.push('\n');
    line
}

fn hclog_level(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// hclog modules are dotted names; Terraform prefixes its own (`provider.terraform-provider-usualstore`).
fn module_name(target: &str) -> String {
    target.replace("::", ".")
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    extra: Vec<(String, Value)>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl FieldCollector {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.extra.push((field.name().to_owned(), value));
        }
    }
}

/// RFC 3339 in UTC with exactly six fractional digits, the shape hclog writes and go-plugin parses.
/// hclog's timestamp: RFC 3339 in UTC with exactly six fractional digits.
fn timestamp(now: SystemTime) -> String {
    humantime::format_rfc3339_micros(now).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamp_has_six_fraction_digits_and_utc() {
        let t = UNIX_EPOCH + Duration::new(1_136_214_245, 7_000);
        assert_eq!(timestamp(t), "2006-01-02T15:04:05.000007Z");
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 0); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn level_follows_terraform_variables() {
        assert_eq!(level_from_env(None, None), Level::WARN);
        assert_eq!(level_from_env(None, Some("debug")), Level::DEBUG);
        assert_eq!(level_from_env(Some("INFO"), Some("TRACE")), Level::INFO);
        assert_eq!(level_from_env(Some(""), Some("JSON")), Level::TRACE);
    }

    #[test]
    fn foreign_crates_are_capped_at_warn() {
        let layer = HclogLayer {
            max_level: Level::TRACE,
        };
        assert!(layer.allows(&Level::TRACE, "terraform_provider_usualstore::provider"));
        assert!(layer.allows(&Level::DEBUG, "usualstore_tenancy::tenant"));
        assert!(!layer.allows(&Level::DEBUG, "tokio_postgres::query"));
        assert!(layer.allows(&Level::WARN, "h2::proto"));
        let quiet = HclogLayer {
            max_level: Level::ERROR,
        };
        assert!(!quiet.allows(&Level::WARN, "h2::proto"));
    }
}
