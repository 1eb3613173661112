//! [`ToolProcessors`]: the pre- and post-processors of tool calls, by tool slug, and their
//! registration on the [`ListenerBuilder`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::{ToolClient, ToolError};
use crate::composio_api::{ComposioClient, ToolExecution};
use crate::event::TriggerEvent;
use crate::listener::ListenerBuilder;

/// What a pre-processor may fail with: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type PreFn = Arc<dyn Fn(&TriggerEvent, Value) -> Result<Value, BoxError> + Send + Sync>;
type PostFn = Arc<dyn Fn(&TriggerEvent, ToolExecution) -> ToolExecution + Send + Sync>;

/// The processors of tool calls, by tool slug (compared case-insensitively), run by
/// [`Tools`](super::Tools) around every execution of that tool.
///
/// - A **pre-processor** receives the event being handled and the arguments of the call and
///   returns the arguments to send (it may force, add, drop or rewrite any of them), or an
///   error, which refuses the call: nothing is sent and the caller gets
///   [`ToolError::Refused`]. This is where values that must not come from a model are put
///   back: "reply in the event's channel and thread, as plain text".
/// - A **post-processor** receives the event and what the tool answered, and returns what
///   the caller gets.
///
/// Several processors of one tool run in the order they were added, each on the previous
/// one's output. Processors are plain synchronous functions; a panic in one fails the
/// handler run like any panic in a handler.
///
/// Register them on the listener with [`ListenerBuilder::pre_process`] and
/// [`ListenerBuilder::post_process`]; build a set by hand for [`Tools::new`](super::Tools::new).
///
/// ```
/// use listener_core::tools::ToolProcessors;
/// use serde_json::{json, Value};
///
/// let processors = ToolProcessors::new().pre("SLACK_SEND_MESSAGE", |event, mut args: Value| {
///     args["channel"] = event.payload["channel"].clone();
///     args["mrkdwn"] = json!(false);
///     Ok::<_, std::convert::Infallible>(args)
/// });
/// assert_eq!(processors.pre_count("slack_send_message"), 1);
/// ```
#[derive(Clone, Default)]
pub struct ToolProcessors {
    pre: HashMap<Box<str>, Vec<PreFn>>,
    post: HashMap<Box<str>, Vec<PostFn>>,
}

/// The key a tool slug is stored and looked up under.
fn key(tool: &str) -> Box<str> {
    tool.trim().to_lowercase().into_boxed_str()
}

impl ToolProcessors {
    /// No processors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pre-processor of `tool` (see [`add_pre`](Self::add_pre)).
    pub fn pre<F, E>(mut self, tool: &str, f: F) -> Self
    where
        F: Fn(&TriggerEvent, Value) -> Result<Value, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        self.add_pre(tool, f);
        self
    }

    /// Adds a post-processor of `tool` (see [`add_post`](Self::add_post)).
    pub fn post<F>(mut self, tool: &str, f: F) -> Self
    where
        F: Fn(&TriggerEvent, ToolExecution) -> ToolExecution + Send + Sync + 'static,
    {
        self.add_post(tool, f);
        self
    }

    /// Adds a pre-processor of `tool`: `f(event, arguments)` returns the arguments to send,
    /// or an error that refuses the call. Runs after the ones added before it.
    pub fn add_pre<F, E>(&mut self, tool: &str, f: F)
    where
        F: Fn(&TriggerEvent, Value) -> Result<Value, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        let f: PreFn = Arc::new(move |event, args| f(event, args).map_err(Into::into));
        self.pre.entry(key(tool)).or_default().push(f);
    }

    /// Adds a post-processor of `tool`: `f(event, execution)` returns what the caller gets.
    /// Runs after the ones added before it.
    pub fn add_post<F>(&mut self, tool: &str, f: F)
    where
        F: Fn(&TriggerEvent, ToolExecution) -> ToolExecution + Send + Sync + 'static,
    {
        self.post.entry(key(tool)).or_default().push(Arc::new(f));
    }

    /// How many pre-processors `tool` has.
    pub fn pre_count(&self, tool: &str) -> usize {
        self.pre.get(&key(tool)).map_or(0, Vec::len)
    }

    /// How many post-processors `tool` has.
    pub fn post_count(&self, tool: &str) -> usize {
        self.post.get(&key(tool)).map_or(0, Vec::len)
    }

    /// Whether there are no processors at all.
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty() && self.post.is_empty()
    }

    /// Runs `tool`'s pre-processors in order; the first error refuses the call.
    pub(crate) fn run_pre(
        &self,
        tool: &str,
        event: &TriggerEvent,
        mut arguments: Value,
    ) -> Result<Value, ToolError> {
        for f in self.pre.get(&key(tool)).into_iter().flatten() {
            arguments = f(event, arguments).map_err(|source| ToolError::Refused {
                tool: tool.to_owned(),
                event_id: event.label().to_owned(),
                source,
            })?;
        }
        Ok(arguments)
    }

    /// Runs `tool`'s post-processors in order.
    pub(crate) fn run_post(
        &self,
        tool: &str,
        event: &TriggerEvent,
        mut execution: ToolExecution,
    ) -> ToolExecution {
        for f in self.post.get(&key(tool)).into_iter().flatten() {
            execution = f(event, execution);
        }
        execution
    }
}

impl fmt::Debug for ToolProcessors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn counts<T>(m: &HashMap<Box<str>, Vec<T>>) -> Vec<(&str, usize)> {
            let mut v: Vec<(&str, usize)> = m.iter().map(|(k, fs)| (&**k, fs.len())).collect();
            v.sort_unstable();
            v
        }
        f.debug_struct("ToolProcessors")
            .field("pre", &counts(&self.pre))
            .field("post", &counts(&self.post))
            .finish()
    }
}

/// Tool execution settings of a listener: the client the [`Tools`](super::Tools) extractor
/// runs tools through, and the processors of its calls. (Needs the `composio-api` feature.)
impl ListenerBuilder {
    /// Lets handlers take [`Tools`](super::Tools): tool executions through `client`, as the
    /// user and connected account of the event being handled. Without it, a handler taking
    /// `Tools` makes [`build`](Self::build) fail.
    pub fn tools(mut self, client: ComposioClient) -> Self {
        self.state_mut().insert(ToolClient(client));
        self
    }

    /// Adds a pre-processor of `tool` (case-insensitive) to every [`Tools`](super::Tools)
    /// call of it: `f(event, arguments)` returns the arguments to send, or an error that
    /// refuses the call ([`ToolError::Refused`]). See [`ToolProcessors`].
    pub fn pre_process<F, E>(mut self, tool: &str, f: F) -> Self
    where
        F: Fn(&TriggerEvent, Value) -> Result<Value, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        self.update_processors(|p| p.add_pre(tool, f));
        self
    }

    /// Adds a post-processor of `tool` (case-insensitive) to every [`Tools`](super::Tools)
    /// call of it: `f(event, execution)` returns what the handler gets. See
    /// [`ToolProcessors`].
    pub fn post_process<F>(mut self, tool: &str, f: F) -> Self
    where
        F: Fn(&TriggerEvent, ToolExecution) -> ToolExecution + Send + Sync + 'static,
    {
        self.update_processors(|p| p.add_post(tool, f));
        self
    }

    /// The processors live in the state map, where the extractor finds them.
    fn update_processors(&mut self, change: impl FnOnce(&mut ToolProcessors)) {
        let state = self.state_mut();
        let mut processors = state
            .get::<ToolProcessors>()
            .map(|p| ToolProcessors::clone(&p))
            .unwrap_or_default();
        change(&mut processors);
        state.insert(processors);
    }
}
