//! The hub's catalog of trigger types, served as Composio's
//! `GET /api/v3.1/triggers_types[/{slug}]` serves them: a bundled set of common triggers
//! ([`BUNDLED`]: Slack's `SLACK_RECEIVE_MESSAGE`, GitHub's `GITHUB_STAR_ADDED_EVENT`,
//! Gmail's `GMAIL_NEW_GMAIL_MESSAGE`), plus the types of files given with
//! [`HubConfig::catalog_files`](crate::HubConfig::catalog_files) (`trigger-hub hub --catalog
//! FILE`).
//!
//! A trigger type is a JSON object in Composio's shape: `slug`, `name`, `description`,
//! `instructions`, `toolkit` (`{slug, name, logo}`, or just the toolkit's slug), `type`
//! (`webhook` or `poll`), `version`, `requires_webhook_endpoint_setup`, `config` (the JSON
//! Schema a trigger instance's `trigger_config` must satisfy) and `payload` (the JSON Schema
//! of the events it sends). Only `slug` is required: `name` defaults to the slug, the
//! toolkit to the slug's part before its first `_` (lower-cased), `type` to `webhook`,
//! `version` to `latest`, both schemas to an object schema with no properties. Both schemas
//! must be valid JSON Schema (draft 2020-12 unless they name another with `$schema`; the
//! hub resolves no remote `$ref`). Other keys are kept and served as they are. Slugs are
//! upper-cased (Composio's slugs are case-insensitive).
//!
//! A catalog file holds one trigger type (an object with a `slug`), an array of them, or an
//! object with an `items` array (the list answer's shape). A type of a file replaces a
//! bundled type (or one of an earlier file) with the same slug; a file naming one slug
//! twice is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use listener_core::preview::truncate_chars;

/// The bundled trigger types, one JSON document each (the files of the crate's `catalog/`
/// folder), in the shape this module describes.
pub const BUNDLED: &[&str] = &[
    include_str!("../catalog/slack_receive_message.json"),
    include_str!("../catalog/github_star_added_event.json"),
    include_str!("../catalog/gmail_new_gmail_message.json"),
];

/// Largest catalog file read.
pub const MAX_CATALOG_FILE_BYTES: u64 = 16 << 20;

/// Most trigger types a catalog holds (bundled and loaded together).
pub const MAX_TRIGGER_TYPES: usize = 10_000;

/// Longest trigger or toolkit slug accepted.
pub(crate) const MAX_SLUG_CHARS: usize = 128;

/// Why a catalog file (or a bundled type) cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file cannot be read.
    #[error("cannot read the trigger catalog {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not JSON, or not one of the shapes a catalog file may have.
    #[error("trigger catalog {origin}: {message}")]
    Invalid {
        /// The file (or `bundled`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// One trigger type of the file is unusable.
    #[error("trigger catalog {origin}: trigger type #{index} ({slug}): {message}")]
    Entry {
        /// The file (or `bundled`).
        origin: String,
        /// Its position in the file, from 1.
        index: usize,
        /// Its slug, or `no slug`.
        slug: String,
        /// What is wrong.
        message: String,
    },
}

/// One trigger type: what the API answers, and its configuration schema compiled.
pub(crate) struct TriggerTypeEntry {
    /// The slug, upper-cased.
    pub(crate) slug: String,
    /// The toolkit's slug, lower-cased.
    pub(crate) toolkit: String,
    /// The type's version.
    pub(crate) version: String,
    /// The trigger type as served.
    pub(crate) answer: Value,
    /// The top-level keys the config schema requires.
    required: Vec<String>,
    config: jsonschema::Validator,
}

impl std::fmt::Debug for TriggerTypeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerTypeEntry")
            .field("slug", &self.slug)
            .field("toolkit", &self.toolkit)
            .finish_non_exhaustive()
    }
}

/// One thing wrong with a trigger configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigProblem {
    /// The field, relative to `trigger_config` (`repo`, `filters.labels[0]`; `""` for the
    /// configuration itself).
    pub(crate) field: String,
    /// The field as a JSON pointer (`/repo`).
    pub(crate) pointer: String,
    /// What is wrong.
    pub(crate) message: String,
}

/// Most problems reported for one configuration.
const MAX_PROBLEMS: usize = 20;

impl TriggerTypeEntry {
    /// Checks a trigger configuration against the type's config schema. A `null` for a key
    /// the schema does not require counts as not given (Composio's schemas default optional
    /// keys to `null`).
    pub(crate) fn check_config(
        &self,
        config: &Map<String, Value>,
    ) -> Result<(), Vec<ConfigProblem>> {
        let mut given = config.clone();
        given.retain(|k, v| !v.is_null() || self.required.iter().any(|r| r == k));
        let instance = Value::Object(given);
        let mut problems = Vec::new();
        for error in self.config.iter_errors(&instance) {
            if problems.len() >= MAX_PROBLEMS {
                break;
            }
            let base: Vec<String> = error
                .instance_path()
                .segments()
                .map(|s| s.to_string())
                .collect();
            match error.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_owned);
                    let mut path = base.clone();
                    path.push(name);
                    problems.push(problem(&path, "is required".to_owned()));
                }
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for key in unexpected {
                        let mut path = base.clone();
                        path.push(key.clone());
                        problems.push(problem(&path, "is not a known key".to_owned()));
                    }
                }
                _ => problems.push(problem(&base, truncate_chars(&error.to_string(), 200))),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.truncate(MAX_PROBLEMS);
            Err(problems)
        }
    }
}

fn problem(path: &[String], message: String) -> ConfigProblem {
    let mut field = String::new();
    let mut pointer = String::new();
    for segment in path {
        pointer.push('/');
        pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) && !field.is_empty() {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(segment);
        }
    }
    ConfigProblem {
        field: truncate_chars(&field, 200),
        pointer: truncate_chars(&pointer, 200),
        message,
    }
}

/// The trigger types a hub serves, by upper-cased slug.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    types: BTreeMap<String, Arc<TriggerTypeEntry>>,
}

impl Catalog {
    /// The bundled types, then the types of `files` (each replacing a type of the same slug).
    pub(crate) fn load(files: &[PathBuf]) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for (n, text) in BUNDLED.iter().enumerate() {
            let value: Value = serde_json::from_str(text).map_err(|e| CatalogError::Invalid {
                origin: "bundled".into(),
                message: format!("document {}: {e}", n + 1),
            })?;
            let entry = entry(value).map_err(|message| CatalogError::Entry {
                origin: "bundled".into(),
                index: n + 1,
                slug: "-".into(),
                message,
            })?;
            catalog.types.insert(entry.slug.clone(), Arc::new(entry));
        }
        for path in files {
            for entry in read_file(path)? {
                catalog.types.insert(entry.slug.clone(), Arc::new(entry));
            }
            if catalog.types.len() > MAX_TRIGGER_TYPES {
                return Err(CatalogError::Invalid {
                    origin: path.display().to_string(),
                    message: format!("more than {MAX_TRIGGER_TYPES} trigger types in all"),
                });
            }
        }
        Ok(catalog)
    }

    /// The type of `slug` (case-insensitive).
    pub(crate) fn get(&self, slug: &str) -> Option<Arc<TriggerTypeEntry>> {
        self.types.get(&slug.trim().to_ascii_uppercase()).cloned()
    }

    /// Every type, by slug.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<TriggerTypeEntry>> {
        self.types.values()
    }
}

/// The trigger types of a catalog file, checked and completed with their defaults, as the
/// hub would serve them.
pub fn load_file(path: &Path) -> Result<Vec<Value>, CatalogError> {
    Ok(read_file(path)?.into_iter().map(|e| e.answer).collect())
}

/// The bundled trigger types, as the hub serves them.
pub fn bundled_trigger_types() -> Vec<Value> {
    BUNDLED
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .filter_map(|v| entry(v).ok())
        .map(|e| e.answer)
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<TriggerTypeEntry>, CatalogError> {
    let origin = path.display().to_string();
    let read = |source| CatalogError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_CATALOG_FILE_BYTES {
        return Err(CatalogError::Invalid {
            origin,
            message: format!("{len} bytes, more than the {MAX_CATALOG_FILE_BYTES} read"),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| CatalogError::Invalid {
        origin: origin.clone(),
        message: format!("not JSON: {e}"),
    })?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) if map.contains_key("slug") => {
            vec![Value::Object(std::mem::take(&mut map))]
        }
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(CatalogError::Invalid {
                    origin,
                    message: "expected a trigger type (an object with a `slug`), an array of them, or an object with an `items` array".into(),
                })
            }
        },
        _ => {
            return Err(CatalogError::Invalid {
                origin,
                message: "expected a JSON array or object".into(),
            })
        }
    };
    if items.len() > MAX_TRIGGER_TYPES {
        return Err(CatalogError::Invalid {
            origin,
            message: format!("more than {MAX_TRIGGER_TYPES} trigger types"),
        });
    }
    let mut out: Vec<TriggerTypeEntry> = Vec::with_capacity(items.len());
    for (n, item) in items.into_iter().enumerate() {
        let slug = item.get("slug").and_then(Value::as_str).map_or_else(
            || "no slug".to_owned(),
            |s| format!("`{}`", truncate_chars(s, 80)),
        );
        let fail = |message: String| CatalogError::Entry {
            origin: origin.clone(),
            index: n + 1,
            slug: slug.clone(),
            message,
        };
        let entry = entry(item).map_err(fail)?;
        if out.iter().any(|e| e.slug == entry.slug) {
            return Err(fail("this slug is given twice in the file".into()));
        }
        out.push(entry);
    }
    Ok(out)
}

fn check_slug(what: &str, slug: &str, extra: &[u8]) -> Result<(), String> {
    let ok = !slug.is_empty()
        && slug.chars().count() <= MAX_SLUG_CHARS
        && slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} `{}` must be 1 to {MAX_SLUG_CHARS} letters, digits or `_`",
            truncate_chars(slug, 80)
        ))
    }
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn schema_field(map: &Map<String, Value>, key: &str) -> Result<Value, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(json!({"type": "object", "properties": {}})),
        Some(Value::Object(schema)) => Ok(Value::Object(schema.clone())),
        Some(_) => Err(format!("`{key}` must be a JSON schema object")),
    }
}

fn compile(key: &str, schema: &Value) -> Result<jsonschema::Validator, String> {
    // Remote `$ref`s are not followed: without a retriever, one is reported as unresolvable.
    jsonschema::options().build(schema).map_err(|e| {
        format!(
            "`{key}` is not a usable JSON schema: {}",
            truncate_chars(&e.to_string(), 300)
        )
    })
}

/// Checks one trigger type and fills in its defaults.
fn entry(value: Value) -> Result<TriggerTypeEntry, String> {
    let Value::Object(mut map) = value else {
        return Err("a trigger type must be a JSON object".into());
    };
    let slug = string_field(&map, "slug")?
        .map(|s| s.trim().to_ascii_uppercase())
        .ok_or("`slug` is required")?;
    check_slug("slug", &slug, b"")?;
    let name = string_field(&map, "name")?.unwrap_or_else(|| slug.clone());
    let description = string_field(&map, "description")?.unwrap_or_default();
    let instructions = string_field(&map, "instructions")?.unwrap_or_default();
    let version = string_field(&map, "version")?.unwrap_or_else(|| "latest".to_owned());
    let default_toolkit = slug.split('_').next().unwrap_or(&slug).to_ascii_lowercase();
    let toolkit = match map.get("toolkit") {
        None | Some(Value::Null) => {
            json!({"slug": default_toolkit, "name": default_toolkit, "logo": ""})
        }
        Some(Value::String(s)) => {
            json!({"slug": s.trim().to_ascii_lowercase(), "name": s.trim(), "logo": ""})
        }
        Some(Value::Object(t)) => {
            let slug = string_field(t, "slug")?
                .map(|s| s.trim().to_ascii_lowercase())
                .ok_or("`toolkit.slug` is required")?;
            let mut t = t.clone();
            if string_field(&t, "name")?.is_none() {
                t.insert("name".into(), json!(slug));
            }
            if string_field(&t, "logo")?.is_none() {
                t.insert("logo".into(), json!(""));
            }
            t.insert("slug".into(), json!(slug));
            Value::Object(t)
        }
        Some(_) => return Err("`toolkit` must be an object {slug, name, logo} or a slug".into()),
    };
    let toolkit_slug = toolkit["slug"].as_str().unwrap_or_default().to_owned();
    check_slug("toolkit slug", &toolkit_slug, b"-")?;
    let kind = string_field(&map, "type")?.unwrap_or_else(|| "webhook".to_owned());
    if kind != "webhook" && kind != "poll" {
        return Err(format!(
            "`type` must be `webhook` or `poll`, not `{}`",
            truncate_chars(&kind, 40)
        ));
    }
    let requires_setup = match map.get("requires_webhook_endpoint_setup") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`requires_webhook_endpoint_setup` must be a boolean".into()),
    };
    let config = schema_field(&map, "config")?;
    if let Some(ty) = config.get("type") {
        if ty != "object" {
            return Err("`config` must describe an object (`\"type\": \"object\"`)".into());
        }
    }
    let payload = schema_field(&map, "payload")?;
    let validator = compile("config", &config)?;
    compile("payload", &payload)?;
    let required = config
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for (key, value) in [
        ("slug", json!(slug)),
        ("name", json!(name)),
        ("description", json!(description)),
        ("instructions", json!(instructions)),
        ("version", json!(version)),
        ("type", json!(kind)),
        ("requires_webhook_endpoint_setup", json!(requires_setup)),
        ("toolkit", toolkit),
        ("config", config),
        ("payload", payload),
    ] {
        map.insert(key.to_owned(), value);
    }
    Ok(TriggerTypeEntry {
        slug,
        toolkit: toolkit_slug,
        version,
        answer: Value::Object(map),
        required,
        config: validator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> Catalog {
        Catalog::load(&[]).unwrap()
    }

    fn temp(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_bundled_types_are_complete_and_their_schemas_valid_json_schema() {
        let catalog = bundled();
        let slugs: Vec<&str> = catalog.iter().map(|e| e.slug.as_str()).collect();
        assert_eq!(
            slugs,
            [
                "GITHUB_STAR_ADDED_EVENT",
                "GMAIL_NEW_GMAIL_MESSAGE",
                "SLACK_RECEIVE_MESSAGE"
            ]
        );
        for entry in catalog.iter() {
            let a = &entry.answer;
            for key in ["name", "description", "instructions", "version", "type"] {
                assert!(
                    a[key].as_str().is_some_and(|s| !s.is_empty()),
                    "{}: {key}",
                    entry.slug
                );
            }
            for key in ["config", "payload"] {
                let schema = &a[key];
                assert_eq!(schema["type"], "object", "{}: {key}", entry.slug);
                assert!(schema["properties"].is_object(), "{}: {key}", entry.slug);
                // Valid under draft 7 and 2020-12 alike.
                for draft in [jsonschema::Draft::Draft7, jsonschema::Draft::Draft202012] {
                    jsonschema::options()
                        .with_draft(draft)
                        .build(schema)
                        .unwrap_or_else(|e| panic!("{} {key} ({draft:?}): {e}", entry.slug));
                }
                for name in schema["required"].as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap();
                    assert!(
                        schema["properties"].get(name).is_some(),
                        "{}: {key} requires unknown {name}",
                        entry.slug
                    );
                }
                for (name, property) in schema["properties"].as_object().unwrap() {
                    assert!(
                        property.get("type").is_some(),
                        "{}: {key}.{name} has no type",
                        entry.slug
                    );
                    assert!(
                        property.get("description").is_some(),
                        "{}: {key}.{name} has no description",
                        entry.slug
                    );
                }
            }
        }
        assert_eq!(bundled_trigger_types().len(), BUNDLED.len());
    }

    #[test]
    fn the_slack_payload_schema_accepts_a_real_event() {
        let catalog = bundled();
        let slack = catalog.get("slack_receive_message").unwrap();
        assert_eq!(slack.toolkit, "slack");
        let payload = json!({
            "channel": "C07JB863EBW", "user": "U07JMDFMR7B", "text": "who broke the staging deploy again",
            "ts": "1763630043.512919", "thread_ts": null, "team_id": "T07J24QFB62", "bot_id": null,
            "channel_type": "channel"
        });
        let validator = jsonschema::validator_for(&slack.answer["payload"]).unwrap();
        assert!(validator.is_valid(&payload));
        assert!(!validator.is_valid(&json!({"channel": "C1"})));
    }

    #[test]
    fn configs_are_checked_and_the_field_named() {
        let catalog = bundled();
        let github = catalog.get("GITHUB_STAR_ADDED_EVENT").unwrap();
        let ok = json!({"owner": "octocat", "repo": "hello-world"});
        assert!(github.check_config(ok.as_object().unwrap()).is_ok());
        let missing = json!({"owner": "octocat"});
        let problems = github
            .check_config(missing.as_object().unwrap())
            .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].field.as_str(), problems[0].pointer.as_str()),
            ("repo", "/repo")
        );
        assert_eq!(problems[0].message, "is required");
        let wrong = json!({"owner": 5, "repo": null});
        let problems = github.check_config(wrong.as_object().unwrap()).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"owner") && fields.contains(&"repo"),
            "{problems:?}"
        );

        let gmail = catalog.get("GMAIL_NEW_GMAIL_MESSAGE").unwrap();
        // An optional key given as null is "not given".
        assert!(gmail
            .check_config(json!({"interval": null}).as_object().unwrap())
            .is_ok());
        let problems = gmail
            .check_config(json!({"interval": 0}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(problems[0].field, "interval");
        assert!(problems[0].message.contains("minimum"), "{problems:?}");
    }

    #[test]
    fn nested_fields_are_named_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp(
            &dir,
            "nested",
            r#"[{"slug": "acme_thing", "config": {"type": "object", "additionalProperties": false,
                 "properties": {"filters": {"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}}}}}]"#,
        );
        let catalog = Catalog::load(&[path]).unwrap();
        let acme = catalog.get("ACME_THING").unwrap();
        assert_eq!(acme.toolkit, "acme");
        assert_eq!(acme.answer["type"], "webhook");
        let problems = acme
            .check_config(
                json!({"filters": {"labels": ["a", 3]}, "extra": 1})
                    .as_object()
                    .unwrap(),
            )
            .unwrap_err();
        let fields: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.pointer.as_str()))
            .collect();
        assert!(
            fields.contains(&("filters.labels[1]", "/filters/labels/1")),
            "{problems:?}"
        );
        assert!(fields.contains(&("extra", "/extra")), "{problems:?}");
    }

    #[test]
    fn odd_schemas_are_taken_or_refused_never_a_panic() {
        let odd = [
            json!({"$schema": "http://example.invalid/unknown-draft"}),
            json!({"$schema": 5}),
            json!({"$ref": "#/definitions/missing"}),
            json!({"$ref": "#"}),
            json!({"$id": "not a uri ::", "type": "object"}),
            json!({"type": "object", "properties": {"x": {"pattern": "("}}}),
            json!({"type": "object", "properties": {"x": {"format": "no-such-format"}}}),
            json!({"type": "object", "required": [1, 2]}),
            json!({"type": "object", "properties": 7}),
            json!({"allOf": [{"$ref": "#/allOf/0"}]}),
        ];
        for schema in odd {
            let item =
                json!({"slug": "ODD_ONE", "config": schema.clone(), "payload": schema.clone()});
            if let Ok(entry) = entry(item) {
                let _ = entry.check_config(&Map::new());
                let _ = entry.check_config(json!({"x": "(", "y": [1]}).as_object().unwrap());
            }
        }
    }

    #[test]
    fn a_file_replaces_bundled_types_and_bad_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp(
            &dir,
            "override",
            r#"{"items": [{"slug": "SLACK_RECEIVE_MESSAGE", "name": "Mine", "toolkit": "slack"}, {"slug": "notion_page_added", "type": "poll", "x_extra": 1}]}"#,
        );
        let catalog = Catalog::load(std::slice::from_ref(&path)).unwrap();
        assert_eq!(
            catalog.get("SLACK_RECEIVE_MESSAGE").unwrap().answer["name"],
            "Mine"
        );
        let notion = catalog.get("NOTION_PAGE_ADDED").unwrap();
        assert_eq!(notion.answer["x_extra"], 1);
        assert_eq!(
            notion.answer["toolkit"],
            json!({"slug": "notion", "name": "notion", "logo": ""})
        );
        assert_eq!(load_file(&path).unwrap().len(), 2);

        let single = temp(&dir, "single", r#"{"slug": "ONE_THING"}"#);
        assert_eq!(load_file(&single).unwrap()[0]["slug"], "ONE_THING");

        let cases = [
            ("notjson", "{oops", "not JSON"),
            ("scalar", "5", "expected a JSON array or object"),
            ("noitems", r#"{"name": "x"}"#, "an object with a `slug`"),
            (
                "noslug",
                r#"[{"name": "x"}]"#,
                "#1 (no slug): `slug` is required",
            ),
            ("badslug", r#"[{"slug": "a b"}]"#, "letters, digits"),
            (
                "twice",
                r#"[{"slug": "A_B"}, {"slug": "a_b"}]"#,
                "#2 (`a_b`): this slug is given twice",
            ),
            (
                "badtype",
                r#"[{"slug": "A_B", "type": "push"}]"#,
                "`type` must be",
            ),
            (
                "badconfig",
                r#"[{"slug": "A_B", "config": {"type": "object", "properties": {"x": {"type": "strang"}}}}]"#,
                "`config` is not a usable JSON schema",
            ),
            (
                "badpayload",
                r#"[{"slug": "A_B", "payload": {"required": 3}}]"#,
                "`payload` is not a usable JSON schema",
            ),
            (
                "configarray",
                r#"[{"slug": "A_B", "config": {"type": "array"}}]"#,
                "must describe an object",
            ),
            (
                "remote",
                r#"[{"slug": "A_B", "config": {"$ref": "https://example.invalid/s.json"}}]"#,
                "`config` is not a usable JSON schema",
            ),
        ];
        for (name, text, expected) in cases {
            let path = temp(&dir, name, text);
            let err = Catalog::load(std::slice::from_ref(&path))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{name}: {err}");
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        }
        let missing = std::env::temp_dir().join("no-such-hub-catalog.json");
        let err = Catalog::load(&[missing]).unwrap_err();
        assert!(matches!(err, CatalogError::Read { .. }), "{err}");
        assert!(
            err.to_string().contains("no-such-hub-catalog.json"),
            "{err}"
        );
    }
}
