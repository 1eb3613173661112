//! The answers of the hub's Composio-shaped management endpoints (triggers, webhook
//! endpoints): Composio's error object, the 400 naming a field, a JSON object body.

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::ids;

/// An answer: a status and a JSON body.
pub(crate) type Answer = (StatusCode, Json<Value>);

/// Composio's error object, with a slug and per-field details.
pub(crate) fn error(
    status: StatusCode,
    slug: &str,
    message: &str,
    errors: Vec<Value>,
    fix: Option<&str>,
) -> Answer {
    (
        status,
        Json(json!({"error": {
            "message": message,
            "code": status.as_u16(),
            "slug": slug,
            "status": status.as_u16(),
            "request_id": ids::fresh("req_"),
            "suggested_fix": fix,
            "errors": errors,
        }})),
    )
}

/// A 400 naming one field.
pub(crate) fn bad_field(field: &str, message: &str) -> Answer {
    error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("`{field}` {message}"),
        vec![json!({"field": field, "message": message})],
        None,
    )
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return e,
        }
    };
}
pub(crate) use tri;

/// A JSON object body (an empty body is `{}`).
pub(crate) fn object_body(body: &[u8]) -> Result<Map<String, Value>, Answer> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body must be a JSON object",
            Vec::new(),
            None,
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("invalid JSON body: {e}"),
            Vec::new(),
            None,
        )),
    }
}
