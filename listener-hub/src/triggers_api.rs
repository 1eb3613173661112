//! Composio's triggers API on the hub, with the paths (under `/api/v3.1` and `/api/v3`
//! alike), `x-api-key` check and JSON shapes of the real service:
//!
//! - `GET  …/triggers_types[?toolkit_slugs=a,b&limit=N&cursor=C]`: the catalog
//!   ([`crate::catalog`]), `{items, next_cursor, total_pages, current_page, total_items}`;
//! - `GET  …/triggers_types/{slug}`: one trigger type (404 `TriggerType_NotFound`);
//! - `GET  …/triggers_types/list/enum`: the slugs;
//! - `POST …/trigger_instances/{slug}/upsert` with `{user_id | connected_account_id,
//!   trigger_config}`: the configuration is validated against the type's config schema
//!   (400 naming each field in `error.errors[].field`), then the instance is created or
//!   found ([`crate::trigger_instances`]); answers `{trigger_id, deprecated: {uuid}}`;
//! - `GET  …/trigger_instances/active` with the filters `user_ids`,
//!   `connected_account_ids`, `auth_config_ids`, `trigger_ids`, `trigger_names` (lists
//!   comma-separated or repeated; the camelCase spellings too), `show_disabled`, `limit`,
//!   `cursor`;
//! - `PATCH …/trigger_instances/manage/{trigger_id}` with `{"status": "enable" |
//!   "disable"}`: answers `{"status": "success"}`; disabling an enabled instance publishes a
//!   V3 `composio.trigger.disabled` event to every subscriber (realtime, and webhook
//!   subscriptions that enabled that type);
//! - `DELETE …/trigger_instances/manage/{trigger_id}`: answers `{trigger_id}`.
//!
//! Errors come in Composio's error object (`{"error": {message, code, slug, status,
//! request_id, suggested_fix, errors}}`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::answers::{bad_field, error, object_body, tri, Answer};
use super::catalog::{Catalog, MAX_SLUG_CHARS};
use super::realtime_api::authorized;
use super::trigger_instances::{
    ListFilter, Owner, TriggerInstanceRecord, TriggerInstances, UpsertRefused,
};
use super::webhook_endpoints;
use super::{ids, HubState};
use listener_core::lifecycle::TRIGGER_DISABLED;
use listener_core::preview::truncate_chars;

/// The organisation id the hub's lifecycle events name.
pub(crate) const HUB_ORG_ID: &str = "ok_local";

/// The page size of list answers unless `limit` says otherwise, and the largest accepted.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// Longest user, account or trigger id accepted.
const MAX_ID_CHARS: usize = 256;

/// The triggers part of the hub's state.
pub(crate) struct Triggers {
    pub(crate) catalog: Catalog,
    pub(crate) instances: TriggerInstances,
    pub(crate) endpoints: webhook_endpoints::Endpoints,
    /// `http://ADDR`, for the URLs the hub hands out.
    pub(crate) base_url: String,
}

/// The routes of this module and of the webhook endpoints API, for both API versions.
pub(crate) fn routes() -> Router<Arc<HubState>> {
    let mut router = Router::new();
    for v in ["v3", "v3.1"] {
        router = router
            .route(&format!("/api/{v}/triggers_types"), get(list_types))
            .route(
                &format!("/api/{v}/triggers_types/list/enum"),
                get(type_enum),
            )
            .route(&format!("/api/{v}/triggers_types/{{slug}}"), get(get_type))
            .route(
                &format!("/api/{v}/trigger_instances/active"),
                get(list_active),
            )
            .route(
                &format!("/api/{v}/trigger_instances/{{slug}}/upsert"),
                post(upsert),
            )
            .route(
                &format!("/api/{v}/trigger_instances/manage/{{trigger_id}}"),
                patch(manage).delete(delete),
            )
            .route(
                &format!("/api/{v}/webhook_endpoints"),
                post(webhook_endpoints::create).get(webhook_endpoints::list),
            )
            .route(
                &format!("/api/{v}/webhook_endpoints/{{id}}"),
                get(webhook_endpoints::get),
            );
    }
    router
}

/// A query string as pairs, read leniently: lists comma-separated or repeated (`k=a&k=b`,
/// `k[]=a`), camelCase or snake_case keys.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Params, Answer> {
        match query {
            Ok(Query(pairs)) => Ok(Params(pairs)),
            Err(_) => Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "invalid query string",
                Vec::new(),
                None,
            )),
        }
    }

    fn values<'a>(&'a self, keys: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(|(k, _)| {
                keys.iter()
                    .any(|want| k == want || k.strip_suffix("[]") == Some(want))
            })
            .map(|(_, v)| v.as_str())
    }

    /// Every value of any of `keys`, comma-split, trimmed, empty ones dropped.
    fn list(&self, keys: &[&str]) -> Vec<String> {
        self.values(keys)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The last value of any of `keys`, trimmed, unless empty.
    fn one<'a>(&'a self, keys: &'a [&'a str]) -> Option<&'a str> {
        self.values(keys)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .last()
    }

    fn flag(&self, keys: &[&str]) -> Result<Option<bool>, Answer> {
        match self.one(keys) {
            None => Ok(None),
            Some("true" | "1" | "True") => Ok(Some(true)),
            Some("false" | "0" | "False") => Ok(Some(false)),
            Some(_) => Err(bad_field(keys[0], "must be true or false")),
        }
    }
}

/// `items` paged by `limit` (default 50, at most 1,000) from `cursor` (an offset the
/// previous page's `next_cursor` gave), in Composio's list shape.
pub(crate) fn page(items: Vec<Value>, params: &Params) -> Result<Value, Answer> {
    let limit = match params.one(&["limit"]) {
        None => DEFAULT_PAGE,
        // Composio's SDK sends a float (`10.0`).
        Some(l) => match l.parse::<f64>() {
            Ok(n) if n >= 1.0 && n.fract() == 0.0 => (n as usize).min(MAX_PAGE),
            _ => return Err(bad_field("limit", "must be a whole number from 1")),
        },
    };
    let start = match params.one(&["cursor"]) {
        None => 0,
        Some(c) => match c.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return Err(bad_field("cursor", "is not a cursor this list gave")),
        },
    };
    let total = items.len();
    let next = start.saturating_add(limit);
    let items: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    Ok(json!({
        "items": items,
        "next_cursor": (next < total).then(|| next.to_string()),
        "total_items": total,
        "total_pages": total.div_ceil(limit).max(1),
        "current_page": start / limit + 1,
    }))
}

/// Checks a slug of a path.
fn path_slug(slug: Result<Path<String>, PathRejection>) -> Result<String, Answer> {
    let Ok(Path(slug)) = slug else {
        return Err(bad_field("slug", "is not valid UTF-8"));
    };
    let slug = slug.trim().to_owned();
    if slug.is_empty()
        || slug.chars().count() > MAX_SLUG_CHARS
        || !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(bad_field(
            "slug",
            &format!("must be 1 to {MAX_SLUG_CHARS} letters, digits or `_`"),
        ));
    }
    Ok(slug)
}

fn type_not_found(slug: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "TriggerType_NotFound",
        &format!("Trigger type {} not found", truncate_chars(slug, 80)),
        Vec::new(),
        Some("List the trigger types with GET /api/v3.1/triggers_types, or load more with the hub's --catalog FILE"),
    )
}

fn instance_not_found(id: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "TriggerInstance_NotFound",
        &format!("Trigger instance {} not found", truncate_chars(id, 80)),
        Vec::new(),
        Some("List the trigger instances with GET /api/v3.1/trigger_instances/active?show_disabled=true"),
    )
}

/// `GET …/triggers_types`.
async fn list_types(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let params = tri!(Params::parse(query));
    let toolkits = params.list(&["toolkit_slugs", "toolkitSlugs"]);
    let items: Vec<Value> = hub
        .triggers
        .catalog
        .iter()
        .filter(|e| {
            toolkits.is_empty() || toolkits.iter().any(|t| t.eq_ignore_ascii_case(&e.toolkit))
        })
        .map(|e| e.answer.clone())
        .collect();
    (StatusCode::OK, Json(tri!(page(items, &params))))
}

/// `GET …/triggers_types/{slug}`.
async fn get_type(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let slug = tri!(path_slug(slug));
    match hub.triggers.catalog.get(&slug) {
        Some(entry) => (StatusCode::OK, Json(entry.answer.clone())),
        None => type_not_found(&slug),
    }
}

/// `GET …/triggers_types/list/enum`.
async fn type_enum(State(hub): State<Arc<HubState>>, headers: HeaderMap) -> Answer {
    tri!(authorized(&hub, &headers));
    let slugs: Vec<&str> = hub
        .triggers
        .catalog
        .iter()
        .map(|e| e.slug.as_str())
        .collect();
    (StatusCode::OK, Json(json!(slugs)))
}

/// An optional id of the body: a string (trimmed; empty is absent) of bounded length.
fn body_id(map: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, Answer> {
    for key in keys {
        match map.get(*key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) if s.trim().chars().count() <= MAX_ID_CHARS => {
                return Ok(Some(s.trim().to_owned()))
            }
            Some(Value::String(_)) => {
                return Err(bad_field(
                    key,
                    &format!("must be at most {MAX_ID_CHARS} characters"),
                ))
            }
            Some(_) => return Err(bad_field(key, "must be a string")),
        }
    }
    Ok(None)
}

/// `POST …/trigger_instances/{slug}/upsert`.
async fn upsert(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let slug = tri!(path_slug(slug));
    let body = tri!(object_body(&body));
    let user_id = tri!(body_id(&body, &["user_id", "userId"]));
    let connected_account_id = tri!(body_id(
        &body,
        &[
            "connected_account_id",
            "connectedAccountId",
            "connectedAuthId"
        ]
    ));
    if user_id.is_none() && connected_account_id.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "give a `user_id` or a `connected_account_id`",
            vec![
                json!({"field": "user_id", "message": "give a user_id or a connected_account_id"}),
            ],
            None,
        );
    }
    let config = match body
        .get("trigger_config")
        .or_else(|| body.get("triggerConfig"))
    {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(_) => return bad_field("trigger_config", "must be a JSON object"),
    };
    let Some(entry) = hub.triggers.catalog.get(&slug) else {
        return type_not_found(&slug);
    };
    if let Err(problems) = entry.check_config(&config) {
        let listed: Vec<String> = problems
            .iter()
            .take(3)
            .map(|p| {
                if p.field.is_empty() {
                    p.message.clone()
                } else {
                    format!("`{}` {}", p.field, p.message)
                }
            })
            .collect();
        let more = problems.len().saturating_sub(3);
        let message = format!(
            "invalid trigger_config for {}: {}{}",
            entry.slug,
            listed.join("; "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        );
        let errors = problems
            .iter()
            .map(|p| json!({"field": p.field, "path": p.pointer, "message": p.message}))
            .collect();
        return error(
            StatusCode::BAD_REQUEST,
            "TriggerInstance_InvalidTriggerConfig",
            &message,
            errors,
            Some(&format!(
                "Check trigger_config against the config schema of GET /api/v3.1/triggers_types/{}",
                entry.slug
            )),
        );
    }
    let owner = Owner {
        user_id,
        connected_account_id,
    };
    match hub
        .triggers
        .instances
        .upsert(&entry.slug, &entry.toolkit, &entry.version, owner, Value::Object(config))
    {
        Ok((instance, created)) => {
            tracing::info!(trigger = %instance.trigger_slug, trigger_id = %instance.id, user_id = %instance.user_id, created, "hub: trigger instance upserted");
            (
                StatusCode::OK,
                Json(json!({"trigger_id": instance.id, "deprecated": {"uuid": instance.id}})),
            )
        }
        Err(UpsertRefused::Full(max)) => error(
            StatusCode::CONFLICT,
            "TriggerInstance_LimitReached",
            &format!("the hub holds its limit of {max} trigger instances"),
            Vec::new(),
            Some("Delete trigger instances, or raise HubConfig::max_trigger_instances (trigger-hub hub --max-trigger-instances)"),
        ),
    }
}

/// `GET …/trigger_instances/active`.
async fn list_active(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let params = tri!(Params::parse(query));
    let filter = ListFilter {
        user_ids: params.list(&["user_ids", "userIds"]),
        connected_account_ids: params.list(&["connected_account_ids", "connectedAccountIds"]),
        auth_config_ids: params.list(&["auth_config_ids", "authConfigIds"]),
        trigger_ids: params.list(&["trigger_ids", "triggerIds"]),
        trigger_names: params.list(&["trigger_names", "triggerNames"]),
        show_disabled: tri!(params.flag(&["show_disabled", "showDisabled"])).unwrap_or(false),
    };
    let items = hub
        .triggers
        .instances
        .list(&filter)
        .iter()
        .map(TriggerInstanceRecord::to_api)
        .collect();
    (StatusCode::OK, Json(tri!(page(items, &params))))
}

/// The `composio.trigger.disabled` event of an instance.
pub(crate) fn disabled_event(
    hub: &HubState,
    instance: &TriggerInstanceRecord,
    reason: &str,
) -> Value {
    json!({
        "id": ids::fresh("evt_"),
        "type": TRIGGER_DISABLED,
        "timestamp": ids::now_rfc3339(),
        "metadata": {"project_id": hub.config.project_id, "org_id": HUB_ORG_ID},
        "data": {
            "trigger_id": instance.id,
            "trigger_slug": instance.trigger_slug,
            "toolkit": {"slug": instance.toolkit_slug},
            "user_id": instance.user_id,
            "connected_account_id": instance.connected_account_id,
            "auth_config_id": instance.auth_config_id,
            "trigger_config": instance.trigger_config,
            "disabled_at": instance.disabled_at,
            "disabled_reason": reason,
        },
    })
}

/// `PATCH …/trigger_instances/manage/{trigger_id}`.
async fn manage(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let Ok(Path(id)) = id else {
        return bad_field("trigger_id", "is not valid UTF-8");
    };
    let body = tri!(object_body(&body));
    let enabled = match body.get("status").and_then(Value::as_str) {
        Some("enable") => true,
        Some("disable") => false,
        _ => return bad_field("status", "must be \"enable\" or \"disable\""),
    };
    let Some((instance, changed)) = hub.triggers.instances.set_enabled(id.trim(), enabled) else {
        return instance_not_found(&id);
    };
    tracing::info!(trigger_id = %instance.id, enabled, changed, "hub: trigger instance status set");
    if changed && !enabled {
        let event = disabled_event(&hub, &instance, "Disabled through the management API");
        match hub.publish_value(event) {
            Ok(p) => {
                tracing::debug!(event_id = %p.id, subscribers = p.subscribers, webhooks = p.webhooks, "hub: trigger.disabled published")
            }
            Err(e) => {
                tracing::warn!(error = %e, "hub: the trigger.disabled event was not published")
            }
        }
    }
    (StatusCode::OK, Json(json!({"status": "success"})))
}

/// `DELETE …/trigger_instances/manage/{trigger_id}`.
async fn delete(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let Ok(Path(id)) = id else {
        return bad_field("trigger_id", "is not valid UTF-8");
    };
    match hub.triggers.instances.delete(id.trim()) {
        Some(instance) => {
            tracing::info!(trigger_id = %instance.id, "hub: trigger instance deleted");
            (StatusCode::OK, Json(json!({"trigger_id": instance.id})))
        }
        None => instance_not_found(&id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        let uri: axum::http::Uri = format!("/x?{q}").parse().unwrap();
        Params::parse(Query::try_from_uri(&uri)).unwrap_or_else(|_| panic!("{q}"))
    }

    #[test]
    fn query_lists_are_read_every_way() {
        let p =
            params("trigger_ids=a,b&trigger_ids=c&triggerIds[]=d&trigger_ids=&user_ids=%20u%20");
        assert_eq!(p.list(&["trigger_ids", "triggerIds"]), ["a", "b", "c", "d"]);
        assert_eq!(p.list(&["user_ids"]), ["u"]);
        assert!(p.list(&["nothing"]).is_empty());
        assert_eq!(
            params("show_disabled=true")
                .flag(&["show_disabled"])
                .unwrap(),
            Some(true)
        );
        assert!(params("show_disabled=maybe")
            .flag(&["show_disabled"])
            .is_err());
    }

    #[test]
    fn pages_follow_their_cursor() {
        let items: Vec<Value> = (0..5).map(|n| json!(n)).collect();
        let first = page(items.clone(), &params("limit=2.0")).unwrap();
        assert_eq!(first["items"], json!([0, 1]));
        assert_eq!(
            (first["total_items"].as_u64(), first["total_pages"].as_u64()),
            (Some(5), Some(3))
        );
        let cursor = first["next_cursor"].as_str().unwrap();
        let last = page(items.clone(), &params(&format!("limit=2&cursor={cursor}"))).unwrap();
        assert_eq!(last["items"], json!([2, 3]));
        assert_eq!(last["current_page"], 2);
        let end = page(items.clone(), &params("limit=2&cursor=4")).unwrap();
        assert_eq!(
            (end["items"].clone(), end["next_cursor"].clone()),
            (json!([4]), Value::Null)
        );
        for bad in ["limit=0", "limit=1.5", "limit=x", "cursor=zz"] {
            assert_eq!(
                page(items.clone(), &params(bad)).unwrap_err().0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let empty = page(Vec::new(), &params("")).unwrap();
        assert_eq!(
            (empty["total_pages"].as_u64(), empty["next_cursor"].clone()),
            (Some(1), Value::Null)
        );
    }
}
