//! What the handlers enforce, written into the generated OpenAPI document:
//! the input constraints (`pattern`, `minLength`, `maxLength`, `minimum`,
//! `maximum`, `maxItems`, `enum`), every error status an operation can
//! answer with its `{error, detail}` body, and the links of the stateful
//! flow (create a conversation, then read it and append to it).
//!
//! A client generated from the document sends only requests the server
//! accepts, and the contract test (`scripts/contract-test.sh`, schemathesis)
//! checks both directions against the running service.
//!
//! The patterns use the syntax shared by ECMA-262 and Python's `re`, and
//! mirror the Rust checks exactly (see `domain::validate_id`, `check_text`,
//! `validate_email`, `validate_phone`).

use serde_json::{Map, Value, json};

use crate::domain::{MAX_GOALS, MAX_ID_LEN, MAX_MESSAGE_LEN};

/// An identifier: `[A-Za-z0-9_.-]`, 1 to 128 characters.
pub(crate) const ID_PATTERN: &str = "^[A-Za-z0-9_.-]{1,128}$";

/// Unicode `White_Space`, the characters `str::trim` removes, as the body
/// of a character class.
const WHITE_SPACE: &str =
    "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// One `@`; no whitespace or control characters; a domain with a dot that
/// neither starts nor ends with one.
const EMAIL_PATTERN: &str = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$";

/// Digits, spaces and `+-()`, with at least six digits.
const PHONE_PATTERN: &str = "^[ +()-]*([0-9][ +()-]*){6,}$";

/// No control characters (keys and tags of `/cache/invalidate`).
const NO_CONTROL_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";

fn id() -> Value {
    json!({"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": MAX_ID_LEN})
}

fn text(max: usize) -> Value {
    // Not blank: at least one character that is not white space.
    let not_blank = format!("[^{WHITE_SPACE}]");
    json!({"type": "string", "pattern": not_blank, "minLength": 1, "maxLength": max})
}

/// `(schema, property, constraints)`: merged into the property's schema.
/// A nullable property keeps its `null`.
fn properties() -> Vec<(&'static str, &'static str, Value)> {
    let message = text(MAX_MESSAGE_LEN);
    let target = json!({
        "type": "string", "minLength": 1, "maxLength": super::admin::MAX_TARGET_CHARS,
        "pattern": NO_CONTROL_PATTERN,
    });
    let mut space_names: Vec<&str> = crate::cache::KeySpace::ALL
        .iter()
        .map(|s| s.name())
        .collect();
    space_names.push("all");
    vec![
        ("CreateConversation", "conversation_id", id()),
        ("CreateConversation", "customer_id", id()),
        ("CreateConversation", "initial_message", message.clone()),
        ("AppendMessage", "content", message.clone()),
        ("UpdateCustomer", "name", text(256)),
        (
            "UpdateCustomer",
            "email",
            json!({"type": "string", "pattern": EMAIL_PATTERN, "maxLength": 254}),
        ),
        (
            "UpdateCustomer",
            "phone",
            json!({"type": "string", "pattern": PHONE_PATTERN, "maxLength": 32}),
        ),
        (
            "UpdateCustomer",
            "age",
            json!({"type": "integer", "minimum": 18, "maximum": 120}),
        ),
        ("UpdateCustomer", "occupation", text(128)),
        (
            "UpdateCustomer",
            "goals",
            json!({"type": "array", "maxItems": MAX_GOALS, "items": text(256)}),
        ),
        ("DetectTier", "customer_id", id()),
        ("DetectTier", "message", message),
        ("DetectTier", "conversation_id", id()),
        ("PredictRequest", "conversation_id", id()),
        ("RecommendRequest", "customer_id", id()),
        ("RoiRequest", "profession", text(128)),
        (
            "RoiRequest",
            "hourly_rate",
            json!({"type": "number", "minimum": 0.01, "maximum": 10_000.0}),
        ),
        (
            "RoiRequest",
            "billable_hours_per_week",
            json!({"type": "number", "minimum": 0.1, "maximum": 100.0}),
        ),
        (
            "RoiRequest",
            "weeks_per_year",
            json!({"type": "number", "minimum": 1.0, "maximum": 52.0}),
        ),
        ("InvalidateKey", "key", target.clone()),
        ("InvalidateTag", "tag", target),
        (
            "InvalidateType",
            "type",
            json!({"type": "string", "enum": space_names}),
        ),
    ]
}

/// The `ids` of `GET /customers`: 1 to 100 ids separated by commas, with
/// any whitespace around each id.
fn id_list() -> Value {
    let id = &ID_PATTERN[1..ID_PATTERN.len() - 1];
    let ws = format!("[{WHITE_SPACE}]*");
    let more = crate::service::CustomerService::MAX_BATCH - 1;
    json!({"type": "string", "pattern": format!("^{ws}{id}({ws},{ws}{id}){{0,{more}}}{ws}$")})
}

/// Path and query parameters, by name.
fn parameter(name: &str) -> Option<Value> {
    match name {
        "id" | "topic" | "name" => Some(id()),
        "ids" => Some(id_list()),
        "model" => Some(json!({"type": "string", "enum": ["objection", "needs", "conversion"]})),
        _ => None,
    }
}

/// Adds the contract to `doc`, the serialized output of `ApiDoc::openapi()`.
pub(crate) fn apply(doc: &mut Value) {
    constrain_properties(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            if let Some(op) = op.as_object_mut() {
                constrain_parameters(op);
                declare_errors(path, op);
            }
        }
    }
    add_links(doc);
}

fn constrain_properties(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (schema, property, constraints) in properties() {
        let Some(slot) = schemas
            .get_mut(schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
        else {
            panic!("OpenAPI: {schema}.{property} is not in the document");
        };
        let nullable = slot
            .get("type")
            .and_then(Value::as_array)
            .is_some_and(|types| types.iter().any(|t| t == "null"));
        let mut merged = slot.as_object().cloned().unwrap_or_default();
        for (k, v) in constraints.as_object().into_iter().flatten() {
            merged.insert(k.clone(), v.clone());
        }
        // A `$ref`/`oneOf` generated for the field gives way to the
        // explicit schema.
        merged.remove("$ref");
        merged.remove("oneOf");
        if nullable {
            let ty = merged.get("type").cloned().unwrap_or(json!("string"));
            merged.insert("type".into(), json!([ty, "null"]));
            if let Some(values) = merged.get_mut("enum").and_then(Value::as_array_mut) {
                values.push(Value::Null);
            }
        }
        *slot = Value::Object(merged);
    }
}

fn constrain_parameters(op: &mut Map<String, Value>) {
    for param in op
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let name = param.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(schema) = parameter(name) {
            param["schema"] = schema;
        }
    }
}

/// Every error an operation can answer: 400 (malformed JSON, path or query
/// encoding), 413/415 (bodies), 422 (input rejected), 503 (a dependency
/// is down, or the request deadline passed).
fn declare_errors(path: &str, op: &mut Map<String, Value>) {
    let has_body = op.contains_key("requestBody");
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let mut errors: Vec<(&str, &str)> = Vec::new();
    if has_body || has_params {
        errors.push((
            "400",
            "Malformed request: JSON syntax, path or query encoding",
        ));
        errors.push(("422", "Invalid input"));
    }
    if has_body {
        errors.push(("413", "Request body over HTTP_BODY_LIMIT_BYTES"));
        errors.push(("415", "The body is not `Content-Type: application/json`"));
    }
    if path != "/health" {
        errors.push((
            "503",
            "A dependency is unavailable, or the request ran past its deadline",
        ));
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, description) in errors {
        // /health/ready documents its own 503 body.
        if path == "/health/ready" && status == "503" {
            continue;
        }
        responses.entry(status).or_insert_with(|| {
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            })
        });
    }
}

/// Links of the stateful flow: a created conversation can be read and
/// appended to; a read customer can be updated.
fn add_links(doc: &mut Value) {
    if let Some(created) = doc.pointer_mut("/paths/~1conversations/post/responses/201") {
        created["links"] = json!({
            "GetConversation": {
                "operationId": "get_conversation",
                "parameters": {"id": "$response.body#/conversation_id"}
            },
            "AppendMessage": {
                "operationId": "append_message",
                "parameters": {"id": "$response.body#/conversation_id"}
            }
        });
    }
    if let Some(appended) =
        doc.pointer_mut("/paths/~1conversations~1{id}~1messages/post/responses/200")
    {
        appended["links"] = json!({
            "GetConversation": {
                "operationId": "get_conversation",
                "parameters": {"id": "$response.body#/conversation_id"}
            }
        });
    }
    if let Some(read) = doc.pointer_mut("/paths/~1customers~1{id}/get/responses/200") {
        read["links"] = json!({
            "UpdateCustomer": {
                "operationId": "update_customer",
                "parameters": {"id": "$response.body#/id"}
            }
        });
    }
}
