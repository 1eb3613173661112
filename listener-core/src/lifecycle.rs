//! Typed payloads of the events that are not trigger messages: Composio's lifecycle events
//! and the admin events about connected accounts, for use as `Payload<T>`.
//!
//! ```
//! use listener_core::lifecycle::{ConnectionExpired, CONNECTION_EXPIRED};
//! use listener_core::prelude::*;
//!
//! #[on_trigger(name = "composio.connected_account.expired")]
//! async fn expired(Payload(account): Payload<ConnectionExpired>) {
//!     println!(
//!         "{} ({}) expired: {}",
//!         account.id,
//!         account.toolkit.slug,
//!         account.status_reason.as_deref().unwrap_or("no reason given")
//!     );
//! }
//! # assert_eq!(CONNECTION_EXPIRED, "composio.connected_account.expired");
//! ```
//!
//! Every field the wire may leave out is defaulted (an empty string, `None`), so a payload
//! with fewer fields still fits; what a type does not name is kept in its `other` map.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of [`ConnectionExpired`] events.
pub const CONNECTION_EXPIRED: &str = "composio.connected_account.expired";
/// The type of [`TriggerDisabled`] events.
pub const TRIGGER_DISABLED: &str = "composio.trigger.disabled";
/// The admin event sent when a user starts connecting an account ([`AccountAdded`]).
pub const ACCOUNT_ADD_START: &str = "connected_account.add.start";
/// The admin event sent once a connected account was added ([`AccountAdded`]).
pub const ACCOUNT_ADD_COMPLETED: &str = "connected_account.add.completed";

/// A toolkit named by its slug (`{"slug": "gmail"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolkitRef {
    /// The toolkit's slug (`gmail`, `slack`, …).
    pub slug: String,
}

/// The auth config a connected account uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfigRef {
    /// The auth config id (`ac_…`).
    pub id: String,
    /// Its scheme (`OAUTH2`, `API_KEY`, …).
    pub auth_scheme: String,
    /// Whatever else was sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The data of `composio.connected_account.expired`: the whole connected account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionExpired {
    /// The connected account id (`ca_…`).
    pub id: String,
    /// The user the account belongs to.
    pub user_id: String,
    /// Its toolkit.
    pub toolkit: ToolkitRef,
    /// Its auth config.
    pub auth_config: AuthConfigRef,
    /// Its status (`EXPIRED`).
    pub status: String,
    /// Why, when Composio says.
    pub status_reason: Option<String>,
    /// Whether the account is disabled, when sent.
    pub is_disabled: Option<bool>,
    /// The account's connection state, as sent.
    pub state: Option<Value>,
    /// When the account was created, as sent.
    pub created_at: Option<String>,
    /// When it last changed, as sent.
    pub updated_at: Option<String>,
    /// Whatever else was sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The data of `composio.trigger.disabled`: which trigger instance stopped, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TriggerDisabled {
    /// The trigger instance id (`ti_…`), when sent.
    pub trigger_id: Option<String>,
    /// The trigger's slug, when sent.
    pub trigger_slug: Option<String>,
    /// The connected account it listened on, when sent.
    pub connected_account_id: Option<String>,
    /// The user, when sent.
    pub user_id: Option<String>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Whatever else was sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The data of the admin events `connected_account.add.start` and
/// `connected_account.add.completed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountAdded {
    /// The app (toolkit) the account is for (`slack`).
    pub app_name: String,
    /// The integration's name.
    pub integration_name: String,
    /// The integration (auth config) id.
    pub integration_id: String,
    /// The connected account id.
    pub connected_account_id: String,
    /// What the connection request carried, as sent.
    pub body: Value,
    /// Whatever else was sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
