//! Acting on an event: [`Tools`], an extractor that executes Composio tools as the user and
//! connected account of the event being handled, with the pre- and post-processors
//! registered on the listener ([`ToolProcessors`]).
//!
//! A handler that replies in Slack takes `Tools` and calls a tool with the arguments it has
//! (a model's tool call, say); the listener's pre-processor of that tool puts back what must
//! not come from the model, and the call goes out through the listener's
//! [`ComposioClient`] with the event's `user_id` and connected account id:
//!
//! ```no_run
//! use listener_core::composio_api::ComposioClient;
//! use listener_core::prelude::*;
//! use serde_json::{json, Value};
//!
//! /// Whatever the arguments say, reply in the message's channel and thread, as plain text.
//! fn reply_in_thread(event: &TriggerEvent, mut args: Value) -> Result<Value, &'static str> {
//!     let msg = &event.payload;
//!     let (Some(channel), Some(ts)) = (msg["channel"].as_str(), msg["ts"].as_str()) else {
//!         return Err("the event is not a Slack message");
//!     };
//!     let thread = msg["thread_ts"].as_str().unwrap_or(ts);
//!     args["channel"] = json!(channel);
//!     args["thread_ts"] = json!(thread);
//!     args["mrkdwn"] = json!(false);
//!     Ok(args)
//! }
//!
//! #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
//! async fn answer(tools: Tools) -> anyhow::Result<()> {
//!     // The model said "#general" and mrkdwn: the pre-processor decides.
//!     let model = json!({"channel": "#general", "mrkdwn": true, "text": "noted"});
//!     let posted = tools.run("SLACK_SEND_MESSAGE", model).await?;
//!     tracing::info!(ts = %posted["ts"], "replied");
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     Listener::from_env()?
//!         .tools(ComposioClient::from_env()?)
//!         .pre_process("SLACK_SEND_MESSAGE", reply_in_thread)
//!         .build()?
//!         .wait_forever()
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! A handler taking `Tools` on a listener given no client ([`ListenerBuilder::tools`]) is
//! refused at [`ListenerBuilder::build`], before any event is read.
//!
//! [`ListenerBuilder::tools`]: crate::ListenerBuilder::tools
//! [`ListenerBuilder::build`]: crate::ListenerBuilder::build

mod processors;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use processors::{BoxError, ToolProcessors};

use crate::composio_api::{ApiError, ComposioClient, ExecuteTool, ToolExecution};
use crate::event::TriggerEvent;
use crate::extract::{EventContext, ExtractError, FromEvent, StateMap};

/// The listener's client for [`Tools`], kept in the state map under its own type so that it
/// never collides with an application's `State<ComposioClient>`.
#[derive(Clone)]
pub(crate) struct ToolClient(pub(crate) ComposioClient);

/// Executes Composio tools as the user and connected account of the event being handled,
/// through the listener's client, with the listener's [`ToolProcessors`].
///
/// As a handler parameter it needs [`ListenerBuilder::tools`](crate::ListenerBuilder::tools);
/// outside a listener (a test, a task of your own) build one with [`Tools::new`]. Cheap to
/// clone: it shares the client, the processors and the event.
///
/// Each call runs: the tool's pre-processors (in order) → `POST
/// /api/v3.1/tools/execute/{tool}` with the arguments they returned, the event's `user_id`
/// and, when the event names one, its connected account id → the tool's post-processors.
/// Tool slugs are matched case-insensitively. The request is sent at most once unless the
/// API refused it outright (see [`ComposioClient::execute_tool`]).
#[derive(Clone)]
pub struct Tools {
    client: ComposioClient,
    processors: Arc<ToolProcessors>,
    event: Arc<TriggerEvent>,
}

impl fmt::Debug for Tools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tools")
            .field("client", &self.client)
            .field("processors", &self.processors)
            .field("event", &self.event.label())
            .field("user_id", &self.user_id())
            .field("connected_account_id", &self.connected_account_id())
            .finish()
    }
}

/// A tool call after its pre-processors: what [`Tools::send`] will send.
///
/// Only [`Tools::prepare`] makes one, so what is sent has been through the pre-processors;
/// its arguments can be read, not changed.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedCall {
    tool: String,
    request: ExecuteTool,
}

impl PreparedCall {
    /// The tool slug, as the caller gave it.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The arguments the pre-processors returned: what will be sent.
    pub fn arguments(&self) -> &Value {
        &self.request.arguments
    }

    /// The whole request body (arguments, user id, connected account, version).
    pub fn request(&self) -> &ExecuteTool {
        &self.request
    }

    /// Pins the tool version sent with the call.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.request.version = Some(version.into());
        self
    }
}

/// Why a [`Tools`] call did not give a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// A pre-processor of the tool refused the call: nothing was sent.
    #[error("a pre-processor of `{tool}` refused the call for event `{event_id}`: {source}")]
    Refused {
        /// The tool slug.
        tool: String,
        /// The event's id ([`TriggerEvent::label`]).
        event_id: String,
        /// What the pre-processor returned.
        #[source]
        source: BoxError,
    },

    /// The arguments to send (after the pre-processors) are not a JSON object: nothing was
    /// sent.
    #[error("the arguments of `{tool}` must be a JSON object, not {found}")]
    InvalidArguments {
        /// The tool slug.
        tool: String,
        /// What they were (`an array`, `null`, …).
        found: &'static str,
    },

    /// The event names neither a user nor a connected account to run the tool as: nothing
    /// was sent.
    #[error("cannot run `{tool}` for event `{event_id}`: the event names no user and no connected account")]
    NoAccount {
        /// The tool slug.
        tool: String,
        /// The event's id.
        event_id: String,
    },

    /// The API call failed (transport, refusal, an answer that could not be read).
    #[error("running `{tool}`: {source}")]
    Api {
        /// The tool slug.
        tool: String,
        /// The client's error.
        #[source]
        source: Box<ApiError>,
    },

    /// The tool ran and reported failure (`"successful": false`); only from
    /// [`Tools::run`].
    #[error("`{tool}` failed: {message} (log id `{log_id}`)")]
    Unsuccessful {
        /// The tool slug.
        tool: String,
        /// The tool's error message.
        message: String,
        /// Composio's log id of the run.
        log_id: String,
        /// The tool's `data`, as answered.
        data: Value,
    },
}

impl Tools {
    /// Tools for `event` through `client`, with `processors` (a [`ToolProcessors`] or a
    /// shared one): for code outside a listener's handlers, such as tests.
    pub fn new(
        client: ComposioClient,
        processors: impl Into<Arc<ToolProcessors>>,
        event: Arc<TriggerEvent>,
    ) -> Self {
        Tools {
            client,
            processors: processors.into(),
            event,
        }
    }

    /// The event the tools run for.
    pub fn event(&self) -> &Arc<TriggerEvent> {
        &self.event
    }

    /// The client the tools run through.
    pub fn client(&self) -> &ComposioClient {
        &self.client
    }

    /// The processors applied.
    pub fn processors(&self) -> &ToolProcessors {
        &self.processors
    }

    /// The user the tools run as: the event's `user_id`, else its connected account's
    /// (`""` when neither is known).
    pub fn user_id(&self) -> &str {
        let ev = &self.event;
        if ev.user_id.trim().is_empty() {
            ev.metadata.connected_account.user_id.trim()
        } else {
            ev.user_id.trim()
        }
    }

    /// The connected account the tools run through: the event's, when it names one.
    pub fn connected_account_id(&self) -> Option<&str> {
        Some(self.event.metadata.connected_account.id.trim()).filter(|id| !id.is_empty())
    }

    /// Runs `tool`'s pre-processors on `arguments` and builds the request: what
    /// [`execute`](Self::execute) would send, without sending it.
    pub fn prepare(&self, tool: &str, arguments: Value) -> Result<PreparedCall, ToolError> {
        let event_id = self.event.label();
        let arguments = match self.processors.run_pre(tool, &self.event, arguments) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(tool, event_id, error = %e, "tool call refused by a pre-processor");
                return Err(e);
            }
        };
        if !arguments.is_object() {
            return Err(ToolError::InvalidArguments {
                tool: tool.to_owned(),
                found: crate::preview::json_type(&arguments),
            });
        }
        let user_id = self.user_id();
        let account = self.connected_account_id();
        if user_id.is_empty() && account.is_none() {
            return Err(ToolError::NoAccount {
                tool: tool.to_owned(),
                event_id: event_id.to_owned(),
            });
        }
        let mut request = ExecuteTool::new(user_id, arguments);
        if let Some(id) = account {
            request = request.connected_account(id);
        }
        tracing::debug!(
            tool,
            event_id,
            pre_processors = self.processors.pre_count(tool),
            "tool call prepared"
        );
        Ok(PreparedCall {
            tool: tool.to_owned(),
            request,
        })
    }

    /// Sends a prepared call and runs the tool's post-processors on the answer. A tool that
    /// ran and failed is `Ok` with `successful: false` (see [`run`](Self::run)).
    pub async fn send(&self, call: &PreparedCall) -> Result<ToolExecution, ToolError> {
        let tool = call.tool.as_str();
        let event_id = self.event.label();
        let answer = self.client.execute_tool(tool, &call.request).await;
        let execution = match answer {
            Ok(execution) => execution,
            Err(e) => {
                // The caller gets the error to act on (and the dispatcher reports a handler
                // that fails with it): no warning of our own.
                tracing::debug!(tool, event_id, error = %e, "tool execution failed");
                return Err(ToolError::Api {
                    tool: tool.to_owned(),
                    source: Box::new(e),
                });
            }
        };
        tracing::info!(
            tool,
            event_id,
            user_id = %call.request.user_id,
            connected_account_id = call.request.connected_account_id.as_deref().unwrap_or(""),
            successful = execution.successful,
            log_id = %execution.log_id,
            "tool executed"
        );
        Ok(self.processors.run_post(tool, &self.event, execution))
    }

    /// Executes `tool` with `arguments`: [`prepare`](Self::prepare), then
    /// [`send`](Self::send). Returns the (post-processed) answer, successful or not.
    pub async fn execute(&self, tool: &str, arguments: Value) -> Result<ToolExecution, ToolError> {
        let call = self.prepare(tool, arguments)?;
        self.send(&call).await
    }

    /// Executes `tool` with `arguments` and returns its `data` when it succeeded, else
    /// [`ToolError::Unsuccessful`] (after the post-processors, which may change either).
    pub async fn run(&self, tool: &str, arguments: Value) -> Result<Value, ToolError> {
        let execution = self.execute(tool, arguments).await?;
        succeeded(tool, execution)
    }
}

/// A successful execution's data, else [`ToolError::Unsuccessful`].
fn succeeded(tool: &str, execution: ToolExecution) -> Result<Value, ToolError> {
    if execution.successful {
        return Ok(execution.data);
    }
    Err(ToolError::Unsuccessful {
        tool: tool.to_owned(),
        message: execution
            .error
            .unwrap_or_else(|| "the tool reported failure without a message".into()),
        log_id: execution.log_id,
        data: execution.data,
    })
}

fn no_client(handler: &str) -> ExtractError {
    ExtractError::Refused {
        handler: handler.to_owned(),
        extractor: "Tools",
        reason: "the listener was given no Composio client to run tools through (use `ListenerBuilder::tools`)".into(),
    }
}

impl FromEvent for Tools {
    type Rejection = ExtractError;

    fn from_event(cx: &EventContext) -> Result<Self, ExtractError> {
        let client = cx
            .state()
            .get::<ToolClient>()
            .ok_or_else(|| no_client(cx.handler()))?;
        let processors = cx.state().get::<ToolProcessors>().unwrap_or_default();
        Ok(Tools {
            client: client.0.clone(),
            processors,
            event: Arc::clone(cx.event()),
        })
    }

    fn check(state: &StateMap, handler: &str) -> Result<(), ExtractError> {
        match state.get::<ToolClient>() {
            Some(_) => Ok(()),
            None => Err(no_client(handler)),
        }
    }
}
