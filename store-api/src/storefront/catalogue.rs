//! The public catalogue: a page of widgets and a page per widget, rendered on the server.
//!
//! Both read through the API's handlers rather than their own SQL, so the storefront asks for
//! exactly what `GET /api/widgets` and `GET /api/widgets/{id}` would give anyone, within the
//! same bounds (page size, cursor validation, the once-a-second count, the request timeout).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::present::{self, Stock};
use super::{Brand, error_page, html};
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Id};
use crate::model::{PageParams, Widget};
use crate::routes::{Json, widgets};

/// Widgets per catalogue page: a fixed size, well inside the API's maximum of 100, so no
/// visitor can ask for more.
pub const PAGE_SIZE: i64 = 12;

/// Characters of a description shown on the catalogue page.
const SUMMARY_CHARS: usize = 160;

/// `?after=` continues after a widget id, as the API's `next` cursor says. Other parameters
/// are ignored.
#[derive(Debug, Deserialize)]
pub struct CatalogueQuery {
    after: Option<String>,
}

/// A widget as the pages show it: every value already in display form, escaped by the template.
pub struct Card {
    pub id: i64,
    pub name: String,
    pub summary: String,
    pub description: String,
    pub price: String,
    pub stock_label: String,
    pub stock_class: &'static str,
    pub image: Option<String>,
}

impl Card {
    fn of(widget: &Widget) -> Card {
        let stock = Stock::of(widget.inventory_level);
        Card {
            id: widget.id,
            name: widget.name.clone(),
            summary: present::summary(&widget.description, SUMMARY_CHARS),
            description: widget.description.clone(),
            price: present::price(widget.price_cents),
            stock_label: stock.label(),
            stock_class: stock.class(),
            image: present::image_url(&widget.image).map(str::to_owned),
        }
    }
}

#[derive(Template)]
#[template(path = "catalogue.html")]
struct CataloguePage {
    brand: Brand,
    cards: Vec<Card>,
    total: i64,
    /// The link to the next page, when there is one.
    next: Option<String>,
    /// Whether this is a later page (it links back to the first).
    paged: bool,
}

pub async fn index(
    state: AppState,
    query: Result<Query<CatalogueQuery>, QueryRejection>,
) -> Response {
    let after = match query {
        Ok(Query(query)) => query.after,
        Err(rejection) => {
            let error = ApiError::bad_request("invalid_query", rejection.body_text());
            return error_page(&state, error);
        }
    };
    let paged = after
        .as_deref()
        .is_some_and(|after| !after.trim().is_empty());
    let params = widgets::WidgetQuery::page(PageParams {
        limit: Some(PAGE_SIZE),
        offset: None,
        after,
    });
    let list = match widgets::list(state.clone(), ApiQuery(params)).await {
        Ok(Json(list)) => list,
        Err(error) => return error_page(&state, error),
    };
    // The cursor is a widget id; a number is all that goes back into the link.
    let next = list
        .next
        .as_deref()
        .and_then(|next| next.parse::<i64>().ok())
        .map(|id| format!("/?after={id}"));
    let page = CataloguePage {
        brand: Brand::of(&state),
        cards: list.items.iter().map(Card::of).collect(),
        total: list.total,
        next,
        paged,
    };
    html(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "widget.html")]
struct WidgetPage {
    brand: Brand,
    card: Card,
}

pub async fn widget(state: AppState, Path(id): Path<String>) -> Response {
    // Anything but an id names no widget: a 404 page, not a complaint about the syntax.
    let Ok(id) = id.parse::<i64>() else {
        let error = ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "there is no such widget",
        );
        return error_page(&state, error);
    };
    match widgets::get(state.clone(), Id(id)).await {
        Ok(Json(widget)) => html(
            StatusCode::OK,
            &WidgetPage {
                brand: Brand::of(&state),
                card: Card::of(&widget),
            },
        ),
        Err(error) => error_page(&state, error),
    }
}
