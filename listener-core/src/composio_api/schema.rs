//! Checking a trigger configuration against its trigger type's JSON schema before an upsert:
//! required keys present (and not `null`), declared properties of the declared JSON type,
//! `enum` values respected, unknown keys refused when `additionalProperties` is `false`.
//! The subset of JSON Schema Composio's trigger config schemas use; not a general validator.

use std::fmt;

use serde_json::{Map, Value};

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The configuration is not a JSON object.
    NotAnObject,
    /// A required key is missing or `null`.
    MissingKey(String),
    /// A key holds a value of the wrong JSON type.
    WrongType {
        /// The key.
        key: String,
        /// The schema's `type`.
        expected: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A key holds a value outside its `enum`.
    NotAllowed {
        /// The key.
        key: String,
        /// The allowed values, as JSON.
        allowed: String,
    },
    /// A key the schema does not declare, with `additionalProperties: false`.
    UnknownKey(String),
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigProblem::NotAnObject => f.write_str("the configuration must be a JSON object"),
            ConfigProblem::MissingKey(k) => write!(f, "required key `{k}` is missing"),
            ConfigProblem::WrongType {
                key,
                expected,
                found,
            } => write!(f, "`{key}` must be {expected}, found {found}"),
            ConfigProblem::NotAllowed { key, allowed } => {
                write!(f, "`{key}` must be one of {allowed}")
            }
            ConfigProblem::UnknownKey(k) => write!(f, "`{k}` is not a known key"),
        }
    }
}

/// A trigger type's configuration schema ([`TriggerType::config`](super::TriggerType)).
///
/// ```
/// use listener_core::composio_api::{ConfigProblem, ConfigSchema};
/// let schema = ConfigSchema::new(serde_json::json!({
///     "type": "object",
///     "properties": {"owner": {"type": "string"}, "repo": {"type": "string"}},
///     "required": ["owner", "repo"]
/// }));
/// assert!(schema.validate(&serde_json::json!({"owner": "octo", "repo": "hello"})).is_ok());
/// let problems = schema.validate(&serde_json::json!({"owner": "octo"})).unwrap_err();
/// assert_eq!(problems, vec![ConfigProblem::MissingKey("repo".into())]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSchema {
    schema: Value,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, ty: &str) -> bool {
    match ty {
        "number" => v.is_number(),
        "integer" => json_type(v) == "integer" || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => json_type(v) == other,
    }
}

impl ConfigSchema {
    /// Wraps a JSON schema (an object with `properties` and `required`).
    pub fn new(schema: Value) -> Self {
        ConfigSchema { schema }
    }

    /// The schema, as given.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.schema.get("properties").and_then(Value::as_object)
    }

    /// The required keys, in the schema's order.
    pub fn required(&self) -> Vec<&str> {
        self.schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The declared keys, in the schema's order.
    pub fn keys(&self) -> Vec<&str> {
        self.properties()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Every problem of `config`, or `Ok(())`.
    pub fn validate(&self, config: &Value) -> Result<(), Vec<ConfigProblem>> {
        let Some(config) = config.as_object() else {
            return Err(vec![ConfigProblem::NotAnObject]);
        };
        let mut problems = Vec::new();
        for key in self.required() {
            if config.get(key).is_none_or(Value::is_null) {
                problems.push(ConfigProblem::MissingKey(key.to_owned()));
            }
        }
        let properties = self.properties();
        for (key, value) in config {
            let Some(spec) = properties.and_then(|p| p.get(key)) else {
                if self.schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                    problems.push(ConfigProblem::UnknownKey(key.clone()));
                }
                continue;
            };
            // `null` for an optional key is "not given" (Composio's schemas default to null).
            if value.is_null() {
                continue;
            }
            let types: Vec<&str> = match spec.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
                problems.push(ConfigProblem::WrongType {
                    key: key.clone(),
                    expected: types.join(" or "),
                    found: json_type(value),
                });
                continue;
            }
            if let Some(Value::Array(allowed)) = spec.get("enum") {
                if !allowed.contains(value) {
                    problems.push(ConfigProblem::NotAllowed {
                        key: key.clone(),
                        allowed: Value::Array(allowed.clone()).to_string(),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn github() -> ConfigSchema {
        ConfigSchema::new(json!({
            "properties": {
                "owner": {"description": "Owner of the repository", "title": "Owner", "default": null, "type": "string"},
                "repo": {"description": "Repository name", "title": "Repo", "default": null, "type": "string"}
            },
            "title": "WebhookConfigSchema",
            "type": "object",
            "required": ["owner", "repo"]
        }))
    }

    #[test]
    fn required_keys_and_types_are_checked() {
        let s = github();
        assert_eq!(s.required(), vec!["owner", "repo"]);
        assert_eq!(s.keys(), vec!["owner", "repo"]);
        assert!(s
            .validate(&json!({"owner": "composiohq", "repo": "composio"}))
            .is_ok());
        assert_eq!(
            s.validate(&json!({"owner": "composiohq", "repo": null})),
            Err(vec![ConfigProblem::MissingKey("repo".into())])
        );
        assert_eq!(
            s.validate(&json!({"owner": 5, "repo": "x", "extra": true})),
            Err(vec![ConfigProblem::WrongType {
                key: "owner".into(),
                expected: "string".into(),
                found: "integer"
            }])
        );
        assert_eq!(
            s.validate(&json!([])),
            Err(vec![ConfigProblem::NotAnObject])
        );
    }

    #[test]
    fn enums_and_closed_objects() {
        let s = ConfigSchema::new(json!({
            "properties": {"interval": {"type": "integer", "enum": [1, 5]}},
            "additionalProperties": false
        }));
        assert!(s.validate(&json!({"interval": 5})).is_ok());
        let problems = s.validate(&json!({"interval": 2, "x": 1})).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].to_string().contains("one of [1,5]"));
        assert_eq!(problems[1], ConfigProblem::UnknownKey("x".into()));
    }
}
