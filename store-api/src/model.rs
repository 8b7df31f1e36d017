//! The JSON the API returns, read from database rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::ApiError;

/// A `timestamptz`, written as RFC 3339 in UTC with microseconds: `2025-01-31T09:04:05.123456Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub SystemTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0u8; RFC3339_MAX];
        serializer.serialize_str(write_rfc3339(self.0, &mut buffer))
    }
}

/// Described by hand: it serializes itself (as a string), so there is nothing to derive from.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 in UTC with microseconds"))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// The longest [`rfc3339`] text: a signed six-digit year at most.
const RFC3339_MAX: usize = 32;

impl<'a> tokio_postgres::types::FromSql<'a> for Timestamp {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        SystemTime::from_sql(ty, raw).map(Timestamp)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <SystemTime as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

pub fn rfc3339(time: SystemTime) -> String {
    let mut buffer = [0u8; RFC3339_MAX];
    write_rfc3339(time, &mut buffer).to_owned()
}

/// [`rfc3339`] into a stack buffer (every response carries two timestamps per row).
/// Hand-written rather than humantime's `format_rfc3339_micros` (already a dependency of the
/// provider): that one panics on times before 1970, which any row written with psql can hold.
fn write_rfc3339(time: SystemTime, buffer: &mut [u8; RFC3339_MAX]) -> &str {
    let (secs, micros) = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => (since.as_secs() as i64, since.subsec_micros()),
        Err(before) => {
            let before = before.duration();
            let mut secs = -(before.as_secs() as i64);
            let mut micros = before.subsec_micros();
            if micros > 0 {
                secs -= 1;
                micros = 1_000_000 - micros;
            }
            (secs, micros)
        }
    };
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut at = 0;
    if (0..=9999).contains(&year) {
        at = put_digits(buffer, at, year as u64, 4);
    } else {
        // Outside what timestamptz stores in practice; keep it readable anyway.
        let text = format!("{year:+07}");
        let len = text.len().min(8);
        buffer[..len].copy_from_slice(&text.as_bytes()[..len]);
        at = len;
    }
    for (separator, value, width) in [
        (b'-', u64::from(month), 2),
        (b'-', u64::from(day), 2),
        (b'T', (of_day / 3600) as u64, 2),
        (b':', (of_day % 3600 / 60) as u64, 2),
        (b':', (of_day % 60) as u64, 2),
        (b'.', u64::from(micros), 6),
    ] {
        buffer[at] = separator;
        at = put_digits(buffer, at + 1, value, width);
    }
    buffer[at] = b'Z';
    at += 1;
    // Only ASCII digits and separators were written.
    std::str::from_utf8(&buffer[..at]).unwrap_or("")
}

/// `value` as `width` decimal digits at `at`; where the next byte goes.
fn put_digits(buffer: &mut [u8], at: usize, mut value: u64, width: usize) -> usize {
    for index in (at..at + width).rev() {
        buffer[index] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    at + width
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;
/// `offset` skips at most this many rows (each skipped row is read and thrown away); deeper
/// pages are reached with `after`, which costs the same on every page.
pub const MAX_OFFSET: i64 = 1000;

/// `?ids=3,5,8` on a list: only those rows (at most a page's worth), so a client that needs a
/// page of orders' widgets or customers asks once instead of once per id.
pub fn ids_filter(raw: Option<&str>) -> Result<Option<Vec<i64>>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid(
            "ids",
            format!(
                "ids must be 1 to {MAX_PAGE_SIZE} positive ids separated by commas, e.g. 3,5,8"
            ),
        )
    };
    let ids = raw
        .split(',')
        .map(|id| id.trim().parse::<i64>().ok().filter(|id| *id > 0))
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(invalid)?;
    if ids.is_empty() || ids.len() > MAX_PAGE_SIZE as usize {
        return Err(invalid());
    }
    Ok(Some(ids))
}

/// `?limit=&offset=` or `?limit=&after=` on every list.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// Rows to skip (for deeper pages follow `next`).
    #[param(minimum = 0, maximum = 1000, default = 0, nullable = false)]
    pub offset: Option<i64>,
    /// The `next` of the previous page: the page after it (not with `offset`).
    #[param(nullable = false)]
    pub after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
    pub after: Option<String>,
}

impl PageParams {
    pub fn page(self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::invalid("offset", "offset must not be negative"));
        }
        if offset > MAX_OFFSET {
            return Err(ApiError::invalid(
                "offset",
                format!(
                    "offset must be at most {MAX_OFFSET}; follow `next` (as `after`) to page further"
                ),
            ));
        }
        let after = self.after.filter(|after| !after.trim().is_empty());
        if after.is_some() && offset > 0 {
            return Err(ApiError::invalid(
                "after",
                "give either offset or after, not both",
            ));
        }
        Ok(Page {
            limit,
            offset,
            after,
        })
    }
}

impl Page {
    /// Rows asked of the database: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// For lists ordered by id: the id to continue after (the smallest id when none).
    pub fn after_id(&self) -> Result<i64, ApiError> {
        match &self.after {
            None => Ok(i64::MIN),
            Some(after) => after.trim().parse().map_err(|_| bad_cursor()),
        }
    }

    /// For lists newest first: the (created_at, id) to continue after, in µs since the epoch.
    pub fn after_time_id(&self) -> Result<(SystemTime, i64), ApiError> {
        match &self.after {
            None => Ok((far_future(), i64::MAX)),
            Some(after) => {
                let (micros, id) = after.trim().split_once('.').ok_or_else(bad_cursor)?;
                let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
                let id: i64 = id.parse().map_err(|_| bad_cursor())?;
                let time = if micros >= 0 {
                    UNIX_EPOCH.checked_add(Duration::from_micros(micros.unsigned_abs()))
                } else {
                    UNIX_EPOCH.checked_sub(Duration::from_micros(micros.unsigned_abs()))
                };
                Ok((time.ok_or_else(bad_cursor)?, id))
            }
        }
    }

    /// The page of `rows` (one more than the limit when another page follows) and its `next`.
    pub fn split<T>(
        &self,
        mut items: Vec<T>,
        cursor: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if items.len() > limit {
            items.truncate(limit);
            let next = items.last().map(cursor);
            (items, next)
        } else {
            (items, None)
        }
    }

    /// The list answer for `items` (as [`Page::fetch`] asked for them) of `tenant`'s list.
    pub fn list<T>(
        &self,
        tenant: String,
        items: Vec<T>,
        total: i64,
        cursor: impl Fn(&T) -> String,
    ) -> List<T> {
        let (items, next) = self.split(items, cursor);
        List {
            tenant,
            items,
            total,
            limit: self.limit,
            offset: self.offset,
            next,
        }
    }
}

fn bad_cursor() -> ApiError {
    ApiError::invalid(
        "after",
        "after must be the `next` of a previous page of this list",
    )
}

/// Later than any row's created_at: the start of a newest-first list.
fn far_future() -> SystemTime {
    // 9999-12-31, well inside timestamptz's range.
    UNIX_EPOCH + Duration::from_secs(253_402_214_400)
}

/// `next` of a newest-first list: the row's created_at in µs since the epoch, and its id.
pub fn time_id_cursor(created_at: Timestamp, id: i64) -> String {
    let micros = match created_at.0.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    };
    format!("{micros}.{id}")
}

/// A page of a list: `{"tenant": …, "items": […], "total": 42, "limit": 20, "offset": 0,
/// "next": "…"}`; `next` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub tenant: String,
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// Pass as `after` for the next page; null on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
}

pub const WIDGET_COLUMNS: &str =
    "id, name, description, inventory_level, price_cents, image, created_at, updated_at";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Widget {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub inventory_level: i32,
    pub price_cents: i64,
    pub image: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Widget {
    /// Reads the columns of [`WIDGET_COLUMNS`], each name prefixed with `prefix`.
    pub fn from_row(row: &Row, prefix: &str) -> Result<Widget, tokio_postgres::Error> {
        let col = |name: &str| format!("{prefix}{name}");
        Ok(Widget {
            id: row.try_get(col("id").as_str())?,
            name: row.try_get(col("name").as_str())?,
            description: row.try_get(col("description").as_str())?,
            inventory_level: row.try_get(col("inventory_level").as_str())?,
            price_cents: row.try_get(col("price_cents").as_str())?,
            image: row.try_get(col("image").as_str())?,
            created_at: row.try_get(col("created_at").as_str())?,
            updated_at: row.try_get(col("updated_at").as_str())?,
        })
    }

    /// The hot path of the catalogue: positional, no column-name formatting.
    pub fn from_plain_row(row: &Row) -> Result<Widget, tokio_postgres::Error> {
        Widget::from_row_at(row, 0)
    }

    /// The columns of [`WIDGET_COLUMNS`] from position `at` on.
    pub fn from_row_at(row: &Row, at: usize) -> Result<Widget, tokio_postgres::Error> {
        Ok(Widget {
            id: row.try_get(at)?,
            name: row.try_get(at + 1)?,
            description: row.try_get(at + 2)?,
            inventory_level: row.try_get(at + 3)?,
            price_cents: row.try_get(at + 4)?,
            image: row.try_get(at + 5)?,
            created_at: row.try_get(at + 6)?,
            updated_at: row.try_get(at + 7)?,
        })
    }
}

pub const CUSTOMER_COLUMNS: &str = "id, first_name, last_name, email, created_at, updated_at";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Customer {
    /// The columns of [`CUSTOMER_COLUMNS`] from position `at` on.
    pub fn from_row_at(row: &Row, at: usize) -> Result<Customer, tokio_postgres::Error> {
        Ok(Customer {
            id: row.try_get(at)?,
            first_name: row.try_get(at + 1)?,
            last_name: row.try_get(at + 2)?,
            email: row.try_get(at + 3)?,
            created_at: row.try_get(at + 4)?,
            updated_at: row.try_get(at + 5)?,
        })
    }

    pub fn from_row(row: &Row, prefix: &str) -> Result<Customer, tokio_postgres::Error> {
        let col = |name: &str| format!("{prefix}{name}");
        Ok(Customer {
            id: row.try_get(col("id").as_str())?,
            first_name: row.try_get(col("first_name").as_str())?,
            last_name: row.try_get(col("last_name").as_str())?,
            email: row.try_get(col("email").as_str())?,
            created_at: row.try_get(col("created_at").as_str())?,
            updated_at: row.try_get(col("updated_at").as_str())?,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transaction {
    pub id: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub last_four: Option<String>,
    pub bank_return_code: Option<String>,
    pub expiry_month: Option<i32>,
    pub expiry_year: Option<i32>,
    pub payment_intent: Option<String>,
    pub payment_method: Option<String>,
    pub status: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Transaction {
    /// id, amount_cents, currency, last_four, bank_return_code, expiry_month, expiry_year,
    /// payment_intent, payment_method, status name, created_at, updated_at from position `at` on.
    pub fn from_row_at(row: &Row, at: usize) -> Result<Transaction, tokio_postgres::Error> {
        Ok(Transaction {
            id: row.try_get(at)?,
            amount_cents: row.try_get(at + 1)?,
            currency: row.try_get(at + 2)?,
            last_four: row.try_get(at + 3)?,
            bank_return_code: row.try_get(at + 4)?,
            expiry_month: row.try_get(at + 5)?,
            expiry_year: row.try_get(at + 6)?,
            payment_intent: row.try_get(at + 7)?,
            payment_method: row.try_get(at + 8)?,
            status: row.try_get(at + 9)?,
            created_at: row.try_get(at + 10)?,
            updated_at: row.try_get(at + 11)?,
        })
    }

    /// Transaction columns prefixed `t_`, its status name as `t_status`.
    pub fn from_row(row: &Row) -> Result<Transaction, tokio_postgres::Error> {
        Ok(Transaction {
            id: row.try_get("t_id")?,
            amount_cents: row.try_get("t_amount_cents")?,
            currency: row.try_get("t_currency")?,
            last_four: row.try_get("t_last_four")?,
            bank_return_code: row.try_get("t_bank_return_code")?,
            expiry_month: row.try_get("t_expiry_month")?,
            expiry_year: row.try_get("t_expiry_year")?,
            payment_intent: row.try_get("t_payment_intent")?,
            payment_method: row.try_get("t_payment_method")?,
            status: row.try_get("t_status")?,
            created_at: row.try_get("t_created_at")?,
            updated_at: row.try_get("t_updated_at")?,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: i64,
    pub widget_id: i64,
    pub customer_id: i64,
    pub transaction_id: i64,
    #[schema(schema_with = crate::openapi::order_status)]
    pub status: String,
    pub quantity: i32,
    pub amount_cents: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Order {
    /// id, widget_id, customer_id, transaction_id, status name, quantity, amount_cents,
    /// created_at, updated_at from position `at` on.
    pub fn from_row_at(row: &Row, at: usize) -> Result<Order, tokio_postgres::Error> {
        Ok(Order {
            id: row.try_get(at)?,
            widget_id: row.try_get(at + 1)?,
            customer_id: row.try_get(at + 2)?,
            transaction_id: row.try_get(at + 3)?,
            status: row.try_get(at + 4)?,
            quantity: row.try_get(at + 5)?,
            amount_cents: row.try_get(at + 6)?,
            created_at: row.try_get(at + 7)?,
            updated_at: row.try_get(at + 8)?,
        })
    }

    /// Order columns unprefixed plus its status name as `status`.
    pub fn from_row(row: &Row) -> Result<Order, tokio_postgres::Error> {
        Ok(Order {
            id: row.try_get("id")?,
            widget_id: row.try_get("widget_id")?,
            customer_id: row.try_get("customer_id")?,
            transaction_id: row.try_get("transaction_id")?,
            status: row.try_get("status")?,
            quantity: row.try_get("quantity")?,
            amount_cents: row.try_get("amount_cents")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// An order with what it refers to, as `GET /api/orders/{id}` returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: Order,
    pub widget: Widget,
    pub customer: Customer,
    pub transaction: Transaction,
}

pub const USER_COLUMNS: &str = "id, first_name, last_name, email, role, created_at, updated_at";

/// An application login; the password hash never leaves the database layer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[schema(schema_with = crate::openapi::role)]
    pub role: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl User {
    pub fn from_row(row: &Row) -> Result<User, tokio_postgres::Error> {
        Ok(User {
            id: row.try_get("id")?,
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            email: row.try_get("email")?,
            role: row.try_get("role")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A row of `statuses` or `transaction_statuses`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Status {
    pub id: i64,
    pub name: String,
}

/// Checks a required text field: trimmed, non-empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The same shape check as the schema's (`%_@_%`), with a field name in the error.
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let value = required_text(field, value, 254)?;
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(value),
        _ => Err(ApiError::invalid(
            field,
            format!("{field} must be an email address"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_738_314_245_123_456);
        assert_eq!(rfc3339(t), "2025-01-31T09:04:05.123456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
        let before = UNIX_EPOCH - Duration::from_micros(1);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59.999999Z");
        let end = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        assert_eq!(rfc3339(end), "9999-12-31T23:59:59.000000Z");
        assert_eq!(
            serde_json::to_string(&Timestamp(t)).unwrap(),
            "\"2025-01-31T09:04:05.123456Z\""
        );
    }

    #[test]
    fn pages_are_bounded() {
        let page = |limit, offset| {
            PageParams {
                limit,
                offset,
                after: None,
            }
            .page()
        };
        assert!(page(None, Some(MAX_OFFSET)).is_ok());
        assert_eq!(
            page(None, Some(MAX_OFFSET + 1))
                .unwrap_err()
                .field
                .as_deref(),
            Some("offset")
        );
        let both = PageParams {
            limit: None,
            offset: Some(3),
            after: Some("7".into()),
        }
        .page();
        assert_eq!(both.unwrap_err().field.as_deref(), Some("after"));
        assert_eq!(page(None, None).unwrap().limit, DEFAULT_PAGE_SIZE);
        assert!(page(Some(0), None).is_err());
        assert!(page(Some(MAX_PAGE_SIZE + 1), None).is_err());
        assert_eq!(
            page(Some(5), Some(-1)).unwrap_err().field.as_deref(),
            Some("offset")
        );
    }

    #[test]
    fn cursors_round_trip() {
        let page = |after: &str| {
            PageParams {
                limit: Some(2),
                offset: None,
                after: Some(after.to_owned()),
            }
            .page()
            .unwrap()
        };
        assert_eq!(page("41").after_id().unwrap(), 41);
        assert!(page("x").after_id().is_err());
        let at = Timestamp(UNIX_EPOCH + Duration::from_micros(1_738_314_245_123_456));
        let cursor = time_id_cursor(at, 9);
        assert_eq!(cursor, "1738314245123456.9");
        assert_eq!(page(&cursor).after_time_id().unwrap(), (at.0, 9));
        let before = Timestamp(UNIX_EPOCH - Duration::from_micros(5));
        assert_eq!(
            page(&time_id_cursor(before, 1)).after_time_id().unwrap(),
            (before.0, 1)
        );
        assert!(page("1.2.3").after_time_id().is_err());
        let (items, next) = page("0").split(vec![1, 2, 3], |n| n.to_string());
        assert_eq!((items, next.as_deref()), (vec![1, 2], Some("2")));
        let (items, next) = page("0").split(vec![1, 2], |n| n.to_string());
        assert_eq!((items, next), (vec![1, 2], None));
    }

    #[test]
    fn emails_need_both_sides() {
        assert!(email("email", "a@b").is_ok());
        assert!(email("email", "@b").is_err());
        assert!(email("email", "a@").is_err());
        assert!(email("email", "ab").is_err());
    }
}
