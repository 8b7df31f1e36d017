//! The OpenAPI 3.1 description served at `GET /api/openapi.json`. Written by hand next to the
//! router; the integration tests call every operation listed here and fail on an undocumented
//! or missing route.

use serde_json::{Map, Value, json};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn list_of(name: &str) -> Value {
    json!({
        "type": "object",
        "required": ["tenant", "items", "total", "limit", "offset", "next"],
        "properties": {
            "tenant": { "type": "string" },
            "items": { "type": "array", "items": schema_ref(name) },
            "total": { "type": "integer" },
            "limit": { "type": "integer" },
            "offset": { "type": "integer" },
            "next": {
                "type": ["string", "null"],
                "description": "pass as `after` for the next page; null on the last page"
            }
        }
    })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("Error")) })
}

/// One operation. `auth`: whether it needs a bearer token; `errors`: the statuses it may
/// answer with besides success (each with the common error body).
struct Op<'a> {
    summary: &'a str,
    tag: &'a str,
    auth: bool,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (&'a str, &'a str, Option<Value>),
    errors: &'a [&'a str],
}

impl Op<'_> {
    fn render(self) -> Value {
        let mut responses = Map::new();
        let (status, description, schema) = self.ok;
        responses.insert(
            status.to_owned(),
            match schema {
                Some(schema) => {
                    json!({ "description": description, "content": json_content(schema) })
                }
                None => json!({ "description": description }),
            },
        );
        let mut errors: Vec<&str> = self.errors.to_vec();
        if self.auth {
            errors.extend(["401", "403"]);
        }
        if self.body.is_some() {
            errors.extend(["400", "413", "415"]);
        }
        errors.push("503");
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            let description = match status {
                "400" => "malformed JSON, a missing or invalid field (named in `error.field`)",
                "401" => "missing, invalid or expired bearer token",
                "403" => {
                    "the user's role may not do this, or the database user may not (read-only DSN)"
                }
                "404" => "no such record",
                "409" => "conflict with the current state",
                "413" => "body over 64 KiB",
                "415" => "body is not JSON",
                "429" => "too many failed sign-ins from this e-mail or address; see `Retry-After`",
                "503" => {
                    "database unavailable, busy or too slow, or every password-hashing slot busy; retry after `Retry-After`"
                }
                _ => "error",
            };
            responses.insert(status.to_owned(), error_response(description));
        }
        let mut op = json!({
            "summary": self.summary,
            "tags": [self.tag],
            "responses": responses,
        });
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params);
        }
        if let Some(body) = self.body {
            op["requestBody"] = json!({ "required": true, "content": json_content(body) });
        }
        op["security"] = if self.auth {
            json!([{ "bearer": [] }])
        } else {
            json!([])
        };
        op
    }
}

fn id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "format": "int64" } })
}

fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

/// `?ids=3,5,8`: only those rows.
fn ids_param() -> Value {
    query_param(
        "ids",
        json!({ "type": "string", "pattern": "^[0-9]+(,[0-9]+){0,99}$" }),
        "only these ids, separated by commas (1 to 100)",
    )
}

fn page_params() -> Vec<Value> {
    vec![
        query_param(
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }),
            "page size",
        ),
        query_param(
            "offset",
            json!({ "type": "integer", "minimum": 0, "maximum": crate::model::MAX_OFFSET, "default": 0 }),
            "rows to skip (for deeper pages follow `next`)",
        ),
        query_param(
            "after",
            json!({ "type": "string" }),
            "the `next` of the previous page: the page after it (not with `offset`)",
        ),
    ]
}

fn timestamps() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn components() -> Value {
    let ts = timestamps();
    json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "token from POST /api/authenticate" }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["status", "code", "message"],
                        "properties": {
                            "status": { "type": "integer" },
                            "code": { "type": "string", "description": "stable, for programs" },
                            "message": { "type": "string" },
                            "field": { "type": ["string", "null"] },
                            "request_id": { "type": ["string", "null"] }
                        }
                    },
                    "tenant": { "type": ["string", "null"] }
                }
            },
            "Widget": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer" }, "name": { "type": "string" },
                    "description": { "type": "string" }, "inventory_level": { "type": "integer" },
                    "price_cents": { "type": "integer" }, "image": { "type": "string" },
                    "created_at": ts, "updated_at": ts
                }
            },
            "NewWidget": {
                "type": "object", "required": ["name", "price_cents"], "additionalProperties": false,
                "properties": {
                    "name": { "type": "string" }, "description": { "type": "string" },
                    "inventory_level": { "type": "integer", "minimum": 0 },
                    "price_cents": { "type": "integer", "minimum": 0 }, "image": { "type": "string", "description": "empty, an http(s):// address with a host, or a path on this site (/images/x.png)" }
                }
            },
            "WidgetChanges": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "name": { "type": "string" }, "description": { "type": "string" },
                    "inventory_level": { "type": "integer", "minimum": 0 },
                    "inventory_delta": {
                        "type": "integer", "minimum": -1_000_000, "maximum": 1_000_000,
                        "description": "added to the stock as it is at that moment (not with inventory_level); a result below 0 is refused"
                    },
                    "price_cents": { "type": "integer", "minimum": 0 }, "image": { "type": "string", "description": "empty, an http(s):// address with a host, or a path on this site (/images/x.png)" }
                }
            },
            "Customer": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer" }, "first_name": { "type": "string" },
                    "last_name": { "type": "string" }, "email": { "type": "string" },
                    "created_at": ts, "updated_at": ts
                }
            },
            "NewCustomer": {
                "type": "object", "required": ["first_name", "last_name", "email"], "additionalProperties": false,
                "properties": {
                    "first_name": { "type": "string" }, "last_name": { "type": "string" },
                    "email": { "type": "string", "format": "email" }
                }
            },
            "Transaction": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer" }, "amount_cents": { "type": "integer" },
                    "currency": { "type": "string" }, "last_four": { "type": ["string", "null"] },
                    "bank_return_code": { "type": ["string", "null"] },
                    "expiry_month": { "type": ["integer", "null"] }, "expiry_year": { "type": ["integer", "null"] },
                    "payment_intent": { "type": ["string", "null"] }, "payment_method": { "type": ["string", "null"] },
                    "status": { "type": "string" }, "created_at": ts, "updated_at": ts
                }
            },
            "Order": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer" }, "widget_id": { "type": "integer" },
                    "customer_id": { "type": "integer" }, "transaction_id": { "type": "integer" },
                    "status": { "type": "string", "enum": ["Cleared", "Refunded", "Cancelled"] },
                    "quantity": { "type": "integer" }, "amount_cents": { "type": "integer" },
                    "created_at": ts, "updated_at": ts
                }
            },
            "OrderDetail": {
                "allOf": [
                    schema_ref("Order"),
                    {
                        "type": "object",
                        "properties": {
                            "widget": schema_ref("Widget"),
                            "customer": schema_ref("Customer"),
                            "transaction": schema_ref("Transaction")
                        }
                    }
                ]
            },
            "PlaceOrder": {
                "type": "object", "required": ["widget_id", "quantity", "payment"], "additionalProperties": false,
                "description": "exactly one of customer_id and customer",
                "properties": {
                    "widget_id": { "type": "integer" },
                    "quantity": { "type": "integer", "minimum": 1, "maximum": 10000 },
                    "customer_id": { "type": "integer" },
                    "customer": schema_ref("NewCustomer"),
                    "payment": {
                        "type": "object", "required": ["currency"], "additionalProperties": false,
                        "properties": {
                            "currency": { "type": "string", "pattern": "^[A-Za-z]{3}$" },
                            "amount_cents": { "type": "integer", "description": "if given, must equal price × quantity (409 otherwise)" },
                            "last_four": { "type": "string", "pattern": "^[0-9]{4}$" },
                            "bank_return_code": { "type": "string" },
                            "expiry_month": { "type": "integer", "minimum": 1, "maximum": 12 },
                            "expiry_year": { "type": "integer", "minimum": 2000, "maximum": 9999 },
                            "payment_intent": { "type": "string" },
                            "payment_method": { "type": "string" },
                            "status": { "type": "string", "enum": ["Cleared", "Pending"], "default": "Cleared" }
                        }
                    }
                }
            },
            "Status": {
                "type": "object",
                "properties": { "id": { "type": "integer" }, "name": { "type": "string" } }
            },
            "StatusList": {
                "type": "object",
                "properties": {
                    "tenant": { "type": "string" },
                    "items": { "type": "array", "items": schema_ref("Status") }
                }
            },
            "User": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer" }, "first_name": { "type": "string" },
                    "last_name": { "type": "string" }, "email": { "type": "string" },
                    "role": { "type": "string", "enum": ["admin", "developer", "customer"] },
                    "created_at": ts, "updated_at": ts
                }
            },
            "NewUser": {
                "type": "object", "required": ["first_name", "last_name", "email", "password", "role"],
                "additionalProperties": false,
                "properties": {
                    "first_name": { "type": "string" }, "last_name": { "type": "string" },
                    "email": { "type": "string", "format": "email" },
                    "password": { "type": "string", "minLength": 8 },
                    "role": { "type": "string", "enum": ["admin", "developer", "customer"] }
                }
            },
            "UserChanges": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "first_name": { "type": "string" }, "last_name": { "type": "string" },
                    "email": { "type": "string", "format": "email" },
                    "password": { "type": "string", "minLength": 8 },
                    "role": { "type": "string", "enum": ["admin", "developer", "customer"] }
                }
            },
            "Credentials": {
                "type": "object", "required": ["email", "password"], "additionalProperties": false,
                "properties": { "email": { "type": "string" }, "password": { "type": "string" } }
            },
            "Authenticated": {
                "type": "object",
                "properties": {
                    "token": { "type": "string" }, "token_type": { "type": "string", "const": "Bearer" },
                    "expires_at": ts, "user": schema_ref("User"), "tenant": { "type": "string" }
                }
            }
        }
    })
}

/// An unauthenticated operations endpoint answering JSON.
fn probe(summary: &str) -> Op<'_> {
    Op {
        summary,
        tag: "operations",
        auth: false,
        params: vec![],
        body: None,
        ok: ("200", "OK", Some(json!({ "type": "object" }))),
        errors: &[],
    }
}

/// The whole document; without `/readyz` and `/metrics` when they are served on `OPS_ADDR`.
pub fn document(separate_ops: bool) -> Value {
    let mut paths = json!({
        "/healthz": { "get": probe("Liveness: the process answers").render() },
        "/readyz": { "get": probe("Readiness: the database answers and its schema is recent enough (503 otherwise)").render() },
        "/metrics": { "get": Op {
            ok: ("200", "Prometheus text format", None),
            ..probe("Request counts by route and status, latency histograms, pool and connection usage")
        }.render() },
        "/api/openapi.json": { "get": probe("This document").render() },
        "/api/widgets": {
            "get": Op {
                summary: "List widgets (public)", tag: "catalogue", auth: false,
                params: {
                    let mut params = page_params();
                    params.push(ids_param());
                    params
                },
                body: None,
                ok: ("200", "a page of widgets", Some(list_of("Widget"))), errors: &["400"],
            }.render(),
            "post": Op {
                summary: "Add a widget (admin)", tag: "catalogue", auth: true,
                params: vec![], body: Some(schema_ref("NewWidget")),
                ok: ("201", "the new widget", Some(schema_ref("Widget"))), errors: &[],
            }.render()
        },
        "/api/widgets/{id}": {
            "get": Op {
                summary: "One widget (public)", tag: "catalogue", auth: false,
                params: vec![id_param()], body: None,
                ok: ("200", "the widget", Some(schema_ref("Widget"))), errors: &["400", "404"],
            }.render(),
            "patch": Op {
                summary: "Change a widget's fields (admin)", tag: "catalogue", auth: true,
                params: vec![id_param()], body: Some(schema_ref("WidgetChanges")),
                ok: ("200", "the widget", Some(schema_ref("Widget"))), errors: &["404"],
            }.render(),
            "delete": Op {
                summary: "Delete a widget that has no orders (admin)", tag: "catalogue", auth: true,
                params: vec![id_param()], body: None,
                ok: ("204", "deleted", None), errors: &["400", "404", "409"],
            }.render()
        },
        "/api/customers": {
            "get": Op {
                summary: "List customers", tag: "customers", auth: true,
                params: {
                    let mut params = page_params();
                    params.push(query_param("q", json!({ "type": "string" }), "matches name or email, any case"));
                    params.push(ids_param());
                    params
                },
                body: None, ok: ("200", "a page of customers", Some(list_of("Customer"))), errors: &["400"],
            }.render(),
            "post": Op {
                summary: "Add a customer (admin, developer)", tag: "customers", auth: true,
                params: vec![], body: Some(schema_ref("NewCustomer")),
                ok: ("201", "the new customer", Some(schema_ref("Customer"))), errors: &["409"],
            }.render()
        },
        "/api/customers/{id}": {
            "get": Op {
                summary: "One customer", tag: "customers", auth: true,
                params: vec![id_param()], body: None,
                ok: ("200", "the customer", Some(schema_ref("Customer"))), errors: &["400", "404"],
            }.render()
        },
        "/api/orders": {
            "get": Op {
                summary: "List orders, newest first", tag: "orders", auth: true,
                params: {
                    let mut params = page_params();
                    params.push(query_param("status", json!({ "type": "string" }), "order status name"));
                    params.push(query_param("customer_id", json!({ "type": "integer" }), "orders of one customer"));
                    params
                },
                body: None, ok: ("200", "a page of orders", Some(list_of("Order"))), errors: &["400"],
            }.render(),
            "post": Op {
                summary: "Place an order: stock, payment and order written together or not at all (admin, developer)",
                tag: "orders", auth: true, params: vec![], body: Some(schema_ref("PlaceOrder")),
                ok: ("201", "the order with widget, customer and transaction", Some(schema_ref("OrderDetail"))),
                errors: &["404", "409"],
            }.render()
        },
        "/api/orders/{id}": {
            "get": Op {
                summary: "One order with its widget, customer and transaction", tag: "orders", auth: true,
                params: vec![id_param()], body: None,
                ok: ("200", "the order", Some(schema_ref("OrderDetail"))), errors: &["400", "404"],
            }.render()
        },
        "/api/orders/{id}/refund": {
            "post": Op {
                summary: "Refund a Cleared order (admin, developer)", tag: "orders", auth: true,
                params: vec![id_param()], body: None,
                ok: ("200", "the order", Some(schema_ref("OrderDetail"))), errors: &["400", "404", "409"],
            }.render()
        },
        "/api/orders/{id}/cancel": {
            "post": Op {
                summary: "Cancel a Cleared order and restock it (admin, developer)", tag: "orders", auth: true,
                params: vec![id_param()], body: None,
                ok: ("200", "the order", Some(schema_ref("OrderDetail"))), errors: &["400", "404", "409"],
            }.render()
        },
        "/api/statuses": {
            "get": Op {
                summary: "Order statuses", tag: "reference", auth: true, params: vec![], body: None,
                ok: ("200", "every order status", Some(schema_ref("StatusList"))), errors: &[],
            }.render()
        },
        "/api/transaction-statuses": {
            "get": Op {
                summary: "Payment statuses", tag: "reference", auth: true, params: vec![], body: None,
                ok: ("200", "every payment status", Some(schema_ref("StatusList"))), errors: &[],
            }.render()
        },
        "/api/authenticate": {
            "post": Op {
                summary: "Exchange email and password for a bearer token", tag: "auth", auth: false,
                params: vec![], body: Some(schema_ref("Credentials")),
                ok: ("200", "a token and its expiry", Some(schema_ref("Authenticated"))),
                errors: &["401", "403", "429"],
            }.render()
        },
        "/api/logout": {
            "post": Op {
                summary: "End the presented token", tag: "auth", auth: true, params: vec![], body: None,
                ok: ("204", "logged out", None), errors: &[],
            }.render()
        },
        "/api/users": {
            "get": Op {
                summary: "List application users (admin)", tag: "users", auth: true,
                params: page_params(), body: None,
                ok: ("200", "a page of users", Some(list_of("User"))), errors: &["400"],
            }.render(),
            "post": Op {
                summary: "Add an application user (admin)", tag: "users", auth: true,
                params: vec![], body: Some(schema_ref("NewUser")),
                ok: ("201", "the new user", Some(schema_ref("User"))), errors: &["409"],
            }.render()
        },
        "/api/users/{id}": {
            "get": Op {
                summary: "One application user (admin)", tag: "users", auth: true,
                params: vec![id_param()], body: None,
                ok: ("200", "the user", Some(schema_ref("User"))), errors: &["400", "404"],
            }.render(),
            "patch": Op {
                summary: "Change a user; a new password ends their sessions (admin)", tag: "users", auth: true,
                params: vec![id_param()], body: Some(schema_ref("UserChanges")),
                ok: ("200", "the user", Some(schema_ref("User"))), errors: &["404", "409"],
            }.render(),
            "delete": Op {
                summary: "Delete a user and their tokens (admin; not yourself)", tag: "users", auth: true,
                params: vec![id_param()], body: None,
                ok: ("204", "deleted", None), errors: &["400", "404", "409"],
            }.render()
        }
    });
    if separate_ops && let Some(paths) = paths.as_object_mut() {
        paths.remove("/readyz");
        paths.remove("/metrics");
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "usualstore store-api",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The store's HTTP JSON API; one instance serves one tenant's database."
        },
        "paths": paths,
        "components": components()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        assert_eq!(document(true)["paths"].as_object().unwrap().len(), 16);
        let doc = document(false);
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "dangling $ref to {name}");
        }
    }
}
