//! The handlers, one module per resource.

pub mod customers;
pub mod operations;
pub mod orders;
pub mod reference;
pub mod session;
pub mod users;
pub mod widgets;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::model::{List, Page};

/// How a list's `total` is had.
pub enum Total<'a> {
    /// Counted with every page.
    Counted,
    /// Counted at most once per [`CachedCount`]'s lifetime.
    Cached(&'a CachedCount),
}

/// A table listed by id: its name, the columns read and how a row becomes an item.
pub struct Table<T> {
    pub name: &'static str,
    pub columns: &'static str,
    pub from_row: fn(&Row) -> Result<T, tokio_postgres::Error>,
    pub id_of: fn(&T) -> i64,
}

// Copy and Clone by hand: derives would ask T to be Copy too, and only fn pointers are held.
impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Table<T> {}

/// One page of a whole table, by id, with the table's total count; with `ids`, of those rows only.
pub async fn table_page<T>(
    state: &AppState,
    table: &Table<T>,
    page: Page,
    total: Total<'_>,
    ids: Option<&[i64]>,
) -> ApiResult<Json<List<T>>> {
    let after = page.after_id()?;
    let client = state.pool.get().await?;
    if let Some(ids) = ids {
        return ids_page(state, &client, *table, page, ids, after).await;
    }
    let Table {
        name: table,
        columns,
        from_row,
        id_of,
    } = *table;
    let select = client
        .prepare_cached(&format!(
            "SELECT {columns} FROM public.{table} WHERE id > $1 ORDER BY id LIMIT $2 OFFSET $3"
        ))
        .await?;
    let fetch = page.fetch();
    let select_params: [&(dyn ToSql + Sync); 3] = [&after, &fetch, &page.offset];
    let known = match total {
        Total::Cached(cache) => cache.fresh(),
        Total::Counted => None,
    };
    let (rows, total) = match known {
        Some(total) => (client.query(&select, &select_params).await?, total),
        None => {
            let count = client
                .prepare_cached(&format!("SELECT count(*) FROM public.{table}"))
                .await?;
            let counting = match total {
                Total::Cached(cache) => Some((cache, cache.start())),
                Total::Counted => None,
            };
            // Both statements go out on the connection at once: one round trip's wait.
            let (rows, total) = tokio::try_join!(
                client.query(&select, &select_params),
                client.query_one(&count, &[]),
            )?;
            let total: i64 = total.try_get(0)?;
            if let Some((cache, started)) = counting {
                cache.store(started, total);
            }
            (rows, total)
        }
    };
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let tenant = state.tenant.get().to_string();
    Ok(Json(page.list(tenant, items, total, |item| {
        id_of(item).to_string()
    })))
}

/// The rows of `table` among `ids` (`?ids=`), a page of them, counted with the same filter. Its
/// own statements, so the plain list's stay as the planner likes them best.
async fn ids_page<T>(
    state: &AppState,
    client: &deadpool_postgres::Object,
    Table {
        name: table,
        columns,
        from_row,
        id_of,
    }: Table<T>,
    page: Page,
    ids: &[i64],
    after: i64,
) -> ApiResult<Json<List<T>>> {
    let select = client
        .prepare_cached(&format!(
            "SELECT {columns} FROM public.{table} WHERE id = ANY($4) AND id > $1 \
             ORDER BY id LIMIT $2 OFFSET $3"
        ))
        .await?;
    let count = client
        .prepare_cached(&format!(
            "SELECT count(*) FROM public.{table} WHERE id = ANY($1)"
        ))
        .await?;
    let fetch = page.fetch();
    let select_params: [&(dyn ToSql + Sync); 4] = [&after, &fetch, &page.offset, &ids];
    let count_params: [&(dyn ToSql + Sync); 1] = [&ids];
    let (rows, total) = tokio::try_join!(
        client.query(&select, &select_params),
        client.query_one(&count, &count_params),
    )?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let tenant = state.tenant.get().to_string();
    Ok(Json(page.list(tenant, items, total.try_get(0)?, |item| {
        id_of(item).to_string()
    })))
}

/// A count kept for a short while, so that pages anyone may ask for do not each count a whole
/// table. While one request counts again, the others keep using the previous value; changes made
/// through this instance drop it at once.
pub struct CachedCount {
    lifetime: Duration,
    state: Mutex<CountState>,
}

#[derive(Default)]
struct CountState {
    value: Option<(Instant, i64)>,
    /// Since when a request has been counting (one that failed is given up after a while).
    refreshing: Option<Instant>,
    generation: u64,
}

/// Handed to the request that counts.
pub struct Counting {
    at: Instant,
    generation: u64,
}

impl CachedCount {
    pub fn new(lifetime: Duration) -> CachedCount {
        CachedCount {
            lifetime,
            state: Mutex::new(CountState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CountState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The count, unless it is too old and nobody is counting yet (then the caller counts).
    pub fn fresh(&self) -> Option<i64> {
        let mut state = self.lock();
        let (at, value) = state.value?;
        let counting = state
            .refreshing
            .is_some_and(|since| since.elapsed() < self.lifetime * 10);
        if at.elapsed() < self.lifetime || counting {
            return Some(value);
        }
        state.refreshing = Some(Instant::now());
        None
    }

    pub fn start(&self) -> Counting {
        Counting {
            at: Instant::now(),
            generation: self.lock().generation,
        }
    }

    pub fn store(&self, counting: Counting, value: i64) {
        let mut state = self.lock();
        state.refreshing = None;
        if state.generation == counting.generation {
            state.value = Some((counting.at, value));
        }
    }

    /// The table changed through this instance.
    pub fn invalidate(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.value = None;
        state.refreshing = None;
    }
}

/// A JSON response body. Unlike axum's, it is written into a buffer sized for a typical answer
/// (no growing and copying on the way) and handed to hyper as is.
pub struct Json<T>(pub T);

/// Most answers (a widget, an order with what it refers to, an error) fit; lists grow once.
const JSON_CAPACITY: usize = 1024;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(JSON_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "a response could not be written as JSON");
                crate::error::ApiError::internal().into_response()
            }
        }
    }
}

/// 201 with the new resource and where it lives.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
