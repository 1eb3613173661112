//! Lenient field access: identity fields that are missing, `null` or not strings become "".

use serde_json::{Map, Value};

/// Removes `key` and returns it if it is a string; anything else (missing, null, number,
/// object…) becomes `""`.
pub(super) fn take_str(map: &mut Map<String, Value>, key: &str) -> String {
    match map.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Borrows `key` as a string, `""` if it is missing or not a string.
pub(super) fn get_str<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Removes `key` and returns it if it is an object; anything else becomes an empty object.
pub(super) fn take_object(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Removes `key` and returns it if it is a string, `None` otherwise.
pub(super) fn take_opt_str(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The JSON type name of a value, for error messages.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A bounded, comma-separated list of an object's keys, for error messages.
pub(super) fn key_list(map: &Map<String, Value>) -> String {
    const MAX_KEYS: usize = 12;
    const MAX_KEY_CHARS: usize = 40;
    let mut out = String::new();
    for (i, key) in map.keys().enumerate() {
        if i == MAX_KEYS {
            out.push_str(&format!(", … ({} keys)", map.len()));
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&crate::preview::truncate_chars(key, MAX_KEY_CHARS));
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}
