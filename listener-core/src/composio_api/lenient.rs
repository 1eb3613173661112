//! Reading API answers leniently: snake_case or camelCase keys, missing or mistyped fields
//! left empty, lists bare or wrapped in `{items | data}`.

use serde_json::{Map, Value};

/// A JSON object read field by field.
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Value>);

impl Fields<'_> {
    /// The first of `keys` that holds a value other than `null`.
    pub(crate) fn value(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter()
            .filter_map(|k| self.0.get(*k))
            .find(|v| !v.is_null())
    }

    /// The first of `keys` that holds a string (numbers are written out), else `""`.
    pub(crate) fn string(&self, keys: &[&str]) -> String {
        self.opt_string(keys).unwrap_or_default()
    }

    /// The first of `keys` that holds a non-empty string (numbers are written out).
    pub(crate) fn opt_string(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| match self.0.get(*k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    }

    /// The first of `keys` that holds a boolean.
    pub(crate) fn opt_bool(&self, keys: &[&str]) -> Option<bool> {
        keys.iter()
            .find_map(|k| self.0.get(*k).and_then(Value::as_bool))
    }

    /// The first of `keys` that holds a non-negative integer.
    pub(crate) fn opt_u64(&self, keys: &[&str]) -> Option<u64> {
        keys.iter()
            .find_map(|k| self.0.get(*k).and_then(Value::as_u64))
    }

    /// The strings of the first of `keys` that holds an array (other elements skipped).
    pub(crate) fn strings(&self, keys: &[&str]) -> Option<Vec<String>> {
        keys.iter().find_map(|k| match self.0.get(*k) {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
    }
}

/// The elements of a list answer: a bare array, or the first array among `keys` of an
/// object.
pub(crate) fn list_items<'a>(value: &'a Value, keys: &[&str]) -> &'a [Value] {
    match value {
        Value::Array(items) => items,
        Value::Object(map) => keys
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
            .map_or(&[], Vec::as_slice),
        _ => &[],
    }
}

/// An object's fields, or an empty object for anything else.
pub(crate) fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}
