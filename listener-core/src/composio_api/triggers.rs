//! Trigger instances (`/api/v3.1/trigger_instances/…`) and trigger types
//! (`/api/v3.1/triggers_types/{slug}`).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{list_items, object, Fields};
use super::{segment, ApiResult, ComposioClient, ConfigSchema, Idempotency, JsonAnswer};

/// The body of `POST /api/v3.1/trigger_instances/{slug}/upsert`: whose trigger, with which
/// configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsertTrigger {
    /// The user whose connected account the trigger watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A specific connected account (instead of, or as well as, the user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_account_id: Option<String>,
    /// The trigger's configuration (see [`TriggerType::config`] for its schema).
    pub trigger_config: Value,
}

impl UpsertTrigger {
    /// For `user_id`, with an empty configuration.
    pub fn for_user(user_id: impl Into<String>) -> Self {
        UpsertTrigger {
            user_id: Some(user_id.into()),
            connected_account_id: None,
            trigger_config: Value::Object(Map::new()),
        }
    }

    /// For the connected account `id`, with an empty configuration.
    pub fn for_connected_account(id: impl Into<String>) -> Self {
        UpsertTrigger {
            user_id: None,
            connected_account_id: Some(id.into()),
            trigger_config: Value::Object(Map::new()),
        }
    }

    /// Also names the connected account.
    pub fn connected_account(mut self, id: impl Into<String>) -> Self {
        self.connected_account_id = Some(id.into());
        self
    }

    /// The trigger configuration.
    pub fn config(mut self, config: Value) -> Self {
        self.trigger_config = config;
        self
    }
}

/// The answer of an upsert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct UpsertedTrigger {
    /// The trigger instance id (`ti_…`).
    pub trigger_id: String,
    /// The whole answer, as sent.
    #[serde(skip_serializing)]
    pub raw: Map<String, Value>,
}

impl From<Value> for UpsertedTrigger {
    fn from(value: Value) -> Self {
        let raw = object(&value);
        let f = Fields(&raw);
        UpsertedTrigger {
            trigger_id: f.string(&["trigger_id", "triggerId", "id", "trigger_nano_id"]),
            raw,
        }
    }
}

/// `enable` or `disable`, for [`ComposioClient::set_trigger_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerStatus {
    /// Deliver events.
    Enable,
    /// Stop delivering events (the instance is kept).
    Disable,
}

/// One trigger instance, as `GET /api/v3.1/trigger_instances/active` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct TriggerInstance {
    /// The instance id (`ti_…`).
    pub id: String,
    /// The trigger type's slug (`SLACK_RECEIVE_MESSAGE`); the API calls it `trigger_name`.
    pub trigger_slug: String,
    /// The user, when the API says.
    pub user_id: String,
    /// The connected account.
    pub connected_account_id: String,
    /// The auth config, when the API says.
    pub auth_config_id: String,
    /// The instance's configuration.
    pub trigger_config: Value,
    /// When it was disabled; `None` for an enabled instance.
    pub disabled_at: Option<String>,
    /// When it last changed.
    pub updated_at: Option<String>,
    /// The whole item, as sent.
    #[serde(skip_serializing)]
    pub raw: Map<String, Value>,
}

impl TriggerInstance {
    /// Whether the instance delivers events (not disabled).
    pub fn is_enabled(&self) -> bool {
        let state = Fields(&self.raw).opt_string(&["status", "state"]);
        self.disabled_at.is_none() && !state.is_some_and(|s| s.eq_ignore_ascii_case("disabled"))
    }
}

impl From<Value> for TriggerInstance {
    fn from(value: Value) -> Self {
        let raw = object(&value);
        let f = Fields(&raw);
        TriggerInstance {
            id: f.string(&["id", "trigger_id", "nano_id", "triggerId"]),
            trigger_slug: f.string(&["trigger_name", "trigger_slug", "triggerName", "slug"]),
            user_id: f.string(&["user_id", "userId"]),
            connected_account_id: f.string(&[
                "connected_account_id",
                "connectedAccountId",
                "connected_account_nano_id",
            ]),
            auth_config_id: f.string(&["auth_config_id", "authConfigId"]),
            trigger_config: f
                .value(&["trigger_config", "triggerConfig"])
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            disabled_at: f.opt_string(&["disabled_at", "disabledAt"]),
            updated_at: f.opt_string(&["updated_at", "updatedAt"]),
            raw,
        }
    }
}

/// A page of active trigger instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct TriggerInstancePage {
    /// The instances.
    pub items: Vec<TriggerInstance>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// Pages in all, when the API says.
    pub total_pages: Option<u64>,
}

impl From<Value> for TriggerInstancePage {
    fn from(value: Value) -> Self {
        let items = list_items(&value, &["items", "data", "triggers"])
            .iter()
            .cloned()
            .map(TriggerInstance::from)
            .collect();
        let map = object(&value);
        let f = Fields(&map);
        TriggerInstancePage {
            items,
            next_cursor: f.opt_string(&["next_cursor", "nextCursor"]),
            total_pages: f.opt_u64(&["total_pages", "totalPages"]),
        }
    }
}

/// Filters of `GET /api/v3.1/trigger_instances/active` (lists are sent comma-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveTriggersQuery {
    /// Only these users' instances.
    pub user_ids: Vec<String>,
    /// Only these connected accounts' instances.
    pub connected_account_ids: Vec<String>,
    /// Only instances of these auth configs.
    pub auth_config_ids: Vec<String>,
    /// Only these instances.
    pub trigger_ids: Vec<String>,
    /// Only instances of these trigger types (slugs).
    pub trigger_names: Vec<String>,
    /// Include disabled instances.
    pub show_disabled: Option<bool>,
    /// Page size.
    pub limit: Option<u32>,
    /// The page to fetch ([`TriggerInstancePage::next_cursor`]).
    pub cursor: Option<String>,
}

impl ActiveTriggersQuery {
    /// No filters: every active instance of the project.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this user's instances.
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_ids.push(user_id.into());
        self
    }

    /// Only this connected account's instances.
    pub fn connected_account(mut self, id: impl Into<String>) -> Self {
        self.connected_account_ids.push(id.into());
        self
    }

    /// Only instances of this trigger type.
    pub fn trigger(mut self, slug: impl Into<String>) -> Self {
        self.trigger_names.push(slug.into());
        self
    }

    /// Include disabled instances.
    pub fn show_disabled(mut self, show: bool) -> Self {
        self.show_disabled = Some(show);
        self
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let lists: [(&'static str, &Vec<String>); 5] = [
            ("user_ids", &self.user_ids),
            ("connected_account_ids", &self.connected_account_ids),
            ("auth_config_ids", &self.auth_config_ids),
            ("trigger_ids", &self.trigger_ids),
            ("trigger_names", &self.trigger_names),
        ];
        for (key, values) in lists {
            if !values.is_empty() {
                out.push((key, values.join(",")));
            }
        }
        if let Some(show) = self.show_disabled {
            out.push(("show_disabled", show.to_string()));
        }
        if let Some(limit) = self.limit {
            out.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            out.push(("cursor", cursor.clone()));
        }
        out
    }
}

/// The toolkit a trigger type belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerTypeToolkit {
    /// Its slug (`github`).
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Its logo URL.
    pub logo: Option<String>,
}

/// A trigger type with its configuration schema, from `GET /api/v3.1/triggers_types/{slug}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct TriggerType {
    /// The slug (`GITHUB_STAR_ADDED_EVENT`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// What it reports.
    pub description: String,
    /// Set-up instructions, when given.
    pub instructions: Option<String>,
    /// The toolkit.
    pub toolkit: TriggerTypeToolkit,
    /// The JSON schema of the trigger configuration (`{}` when none).
    pub config: Value,
    /// The JSON schema of the event payload (`{}` when none).
    pub payload: Value,
    /// The trigger type's version, when given.
    pub version: Option<String>,
    /// The whole answer, as sent.
    #[serde(skip_serializing)]
    pub raw: Map<String, Value>,
}

impl TriggerType {
    /// The configuration schema, for checking a configuration before an upsert.
    pub fn config_schema(&self) -> ConfigSchema {
        ConfigSchema::new(self.config.clone())
    }
}

impl From<Value> for TriggerType {
    fn from(value: Value) -> Self {
        let raw = object(&value);
        let f = Fields(&raw);
        let toolkit = match f.value(&["toolkit"]) {
            Some(Value::Object(t)) => {
                let t = Fields(t);
                TriggerTypeToolkit {
                    slug: t.string(&["slug"]),
                    name: t.string(&["name"]),
                    logo: t.opt_string(&["logo"]),
                }
            }
            Some(Value::String(slug)) => TriggerTypeToolkit {
                slug: slug.clone(),
                ..TriggerTypeToolkit::default()
            },
            _ => TriggerTypeToolkit::default(),
        };
        let schema = |keys: &[&str]| {
            f.value(keys)
                .filter(|v| v.is_object())
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()))
        };
        TriggerType {
            slug: f.string(&["slug"]),
            name: f.string(&["name"]),
            description: f.string(&["description"]),
            instructions: f.opt_string(&["instructions"]),
            toolkit,
            config: schema(&["config", "config_schema", "configSchema"]),
            payload: schema(&["payload", "payload_schema", "payloadSchema"]),
            version: f.opt_string(&["version"]),
            raw,
        }
    }
}

impl ComposioClient {
    /// Creates (or updates) the trigger `trigger_slug` for a user or connected account:
    /// `POST /api/v3.1/trigger_instances/{slug}/upsert`. Upserting again with the same
    /// owner updates the configuration; it does not create a second instance.
    pub async fn upsert_trigger(
        &self,
        trigger_slug: &str,
        request: &UpsertTrigger,
    ) -> ApiResult<UpsertedTrigger> {
        let slug = segment("trigger slug", trigger_slug)?;
        if request.user_id.as_deref().is_none_or(str::is_empty)
            && request
                .connected_account_id
                .as_deref()
                .is_none_or(str::is_empty)
        {
            return Err(super::ApiError::config(
                "upsert",
                "give a user_id or a connected_account_id",
            ));
        }
        self.with_body(
            Method::POST,
            &["api", "v3.1", "trigger_instances", slug, "upsert"],
            request,
            Idempotency::Repeatable,
        )
        .await
    }

    /// Enables or disables a trigger instance:
    /// `PATCH /api/v3.1/trigger_instances/manage/{trigger_id}`.
    pub async fn set_trigger_status(
        &self,
        trigger_id: &str,
        status: TriggerStatus,
    ) -> ApiResult<JsonAnswer> {
        let id = segment("trigger id", trigger_id)?;
        self.with_body(
            Method::PATCH,
            &["api", "v3.1", "trigger_instances", "manage", id],
            &serde_json::json!({ "status": status }),
            Idempotency::Repeatable,
        )
        .await
    }

    /// [`set_trigger_status`](Self::set_trigger_status) with [`TriggerStatus::Enable`].
    pub async fn enable_trigger(&self, trigger_id: &str) -> ApiResult<JsonAnswer> {
        self.set_trigger_status(trigger_id, TriggerStatus::Enable)
            .await
    }

    /// [`set_trigger_status`](Self::set_trigger_status) with [`TriggerStatus::Disable`].
    pub async fn disable_trigger(&self, trigger_id: &str) -> ApiResult<JsonAnswer> {
        self.set_trigger_status(trigger_id, TriggerStatus::Disable)
            .await
    }

    /// Deletes a trigger instance: `DELETE /api/v3.1/trigger_instances/manage/{trigger_id}`.
    pub async fn delete_trigger(&self, trigger_id: &str) -> ApiResult<JsonAnswer> {
        let id = segment("trigger id", trigger_id)?;
        self.delete(&["api", "v3.1", "trigger_instances", "manage", id])
            .await
    }

    /// Lists active trigger instances: `GET /api/v3.1/trigger_instances/active`.
    pub async fn list_active_triggers(
        &self,
        query: &ActiveTriggersQuery,
    ) -> ApiResult<TriggerInstancePage> {
        self.get(
            &["api", "v3.1", "trigger_instances", "active"],
            query.pairs(),
        )
        .await
    }

    /// A trigger type with its configuration schema: `GET /api/v3.1/triggers_types/{slug}`.
    pub async fn get_trigger_type(&self, trigger_slug: &str) -> ApiResult<TriggerType> {
        let slug = segment("trigger slug", trigger_slug)?;
        self.get(&["api", "v3.1", "triggers_types", slug], Vec::new())
            .await
    }
}
