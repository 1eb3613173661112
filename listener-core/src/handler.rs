//! Handlers: a function plus its name and filter, erased behind one callable type.
//!
//! Any `async fn` or plain `fn` whose parameters are all [`FromEvent`] extractors (up to
//! eight) and whose return type is [`IntoOutcome`] is a handler. Plain functions run on
//! tokio's blocking pool so they never stall the event loop.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::extract::{EventContext, ExtractError, FromEvent, StateMap};
use crate::filter::Filter;
use crate::policy::{retry_backoff, KeyPath, Policy};

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a handler's return value means.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid trigger handler return type",
    label = "handlers return `()` or `Result<(), E>` with `E: Display`",
    note = "`anyhow::Result<()>` works"
)]
pub trait IntoOutcome: Send + 'static {
    /// `Ok(())` for success, or the error's text (its `{:#}` form, which for `anyhow`
    /// includes the cause chain).
    fn into_outcome(self) -> std::result::Result<(), String>;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display + Send + 'static> IntoOutcome for std::result::Result<(), E> {
    fn into_outcome(self) -> std::result::Result<(), String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// Why one handler run failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FailureKind {
    /// The handler returned an error (its text).
    Error(String),
    /// The handler panicked (the panic message).
    Panic(String),
    /// A parameter could not be extracted: the extractor's rejection (a payload that does
    /// not fit `Payload<T>` is an [`ExtractError::Payload`]; a custom extractor's own error
    /// can be had back with `downcast_ref`).
    Extract(Arc<dyn std::error::Error + Send + Sync>),
    /// The handler ran longer than its timeout (its own, or the listener's).
    TimedOut(Duration),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Error(e) => write!(f, "returned an error: {e}"),
            FailureKind::Panic(p) => write!(f, "panicked: {p}"),
            FailureKind::Extract(e) => write!(f, "could not extract a parameter: {e}"),
            FailureKind::TimedOut(d) => write!(f, "timed out after {d:?}"),
        }
    }
}

impl FailureKind {
    /// Whether another attempt could go differently: errors, panics and timeouts can; an
    /// extraction failure (the payload does not fit the handler's type) cannot.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, FailureKind::Extract(_))
    }

    /// A short name of the kind, for logs and metrics: `error`, `panic`, `extract`,
    /// `timeout`.
    pub fn label(&self) -> &'static str {
        match self {
            FailureKind::Error(_) => "error",
            FailureKind::Panic(_) => "panic",
            FailureKind::Extract(_) => "extract",
            FailureKind::TimedOut(_) => "timeout",
        }
    }

    /// A panic, from its payload (its text when it has one).
    pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_owned()
        };
        FailureKind::Panic(text)
    }
}

pub(crate) trait Erased: Send + Sync + 'static {
    fn call(&self, cx: EventContext) -> BoxFuture<std::result::Result<(), FailureKind>>;
    fn check(&self, state: &StateMap, handler: &str) -> Result<(), ExtractError>;
}

/// A type-erased handler function. Built by [`Handler::new`], [`Handler::blocking`], or the
/// `#[on_trigger]` macro.
#[derive(Clone)]
pub struct HandlerFn {
    inner: Arc<dyn Erased>,
    blocking: bool,
}

/// An `async fn` usable as a handler: every parameter a [`FromEvent`], the output an
/// [`IntoOutcome`]. Implemented for functions of up to eight parameters.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an async trigger handler",
    note = "a handler is an `async fn` whose parameters implement `FromEvent` and whose output is `()` or `Result<(), E: Display>`"
)]
pub trait AsyncHandlerFn<Args>: Send + Sync + Sized + 'static {
    #[doc(hidden)]
    fn into_handler_fn(self) -> HandlerFn;
}

/// A plain `fn` usable as a handler (run on the blocking pool): every parameter a
/// [`FromEvent`], the return an [`IntoOutcome`]. Up to eight parameters.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a blocking trigger handler",
    note = "a blocking handler is a `fn` whose parameters implement `FromEvent` and that returns `()` or `Result<(), E: Display>`"
)]
pub trait BlockingHandlerFn<Args>: Send + Sync + Sized + 'static {
    #[doc(hidden)]
    fn into_handler_fn(self) -> HandlerFn;
}

struct AsyncFn<F, Args> {
    f: F,
    _args: PhantomData<fn(Args)>,
}

struct BlockingFn<F, Args> {
    f: Arc<F>,
    _args: PhantomData<fn(Args)>,
}

fn extract_failure(rejection: impl std::error::Error + Send + Sync + 'static) -> FailureKind {
    FailureKind::Extract(Arc::new(rejection))
}

macro_rules! impl_handler_fn {
    ($($A:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($A,)*> Erased for AsyncFn<F, ($($A,)*)>
        where
            F: Fn($($A),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutcome,
            $($A: FromEvent,)*
        {
            fn call(&self, cx: EventContext) -> BoxFuture<std::result::Result<(), FailureKind>> {
                $(
                    let $A = match $A::from_event(&cx) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(extract_failure(e)))),
                    };
                )*
                let fut = (self.f)($($A),*);
                Box::pin(async move { fut.await.into_outcome().map_err(FailureKind::Error) })
            }

            fn check(&self, state: &StateMap, handler: &str) -> Result<(), ExtractError> {
                $($A::check(state, handler)?;)*
                Ok(())
            }
        }

        impl<F, Fut, R, $($A,)*> AsyncHandlerFn<($($A,)*)> for F
        where
            F: Fn($($A),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutcome,
            $($A: FromEvent,)*
        {
            fn into_handler_fn(self) -> HandlerFn {
                HandlerFn {
                    inner: Arc::new(AsyncFn::<F, ($($A,)*)> { f: self, _args: PhantomData }),
                    blocking: false,
                }
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, R, $($A,)*> Erased for BlockingFn<F, ($($A,)*)>
        where
            F: Fn($($A),*) -> R + Send + Sync + 'static,
            R: IntoOutcome,
            $($A: FromEvent,)*
        {
            fn call(&self, cx: EventContext) -> BoxFuture<std::result::Result<(), FailureKind>> {
                let f = Arc::clone(&self.f);
                Box::pin(async move {
                    let run = move || -> std::result::Result<(), FailureKind> {
                        $(let $A = $A::from_event(&cx).map_err(extract_failure)?;)*
                        f($($A),*).into_outcome().map_err(FailureKind::Error)
                    };
                    match tokio::task::spawn_blocking(run).await {
                        Ok(outcome) => outcome,
                        Err(e) if e.is_panic() => Err(FailureKind::panicked(&*e.into_panic())),
                        Err(_) => Err(FailureKind::Panic("the blocking task was cancelled".to_owned())),
                    }
                })
            }

            fn check(&self, state: &StateMap, handler: &str) -> Result<(), ExtractError> {
                $($A::check(state, handler)?;)*
                Ok(())
            }
        }

        impl<F, R, $($A,)*> BlockingHandlerFn<($($A,)*)> for F
        where
            F: Fn($($A),*) -> R + Send + Sync + 'static,
            R: IntoOutcome,
            $($A: FromEvent,)*
        {
            fn into_handler_fn(self) -> HandlerFn {
                HandlerFn {
                    inner: Arc::new(BlockingFn::<F, ($($A,)*)> { f: Arc::new(self), _args: PhantomData }),
                    blocking: true,
                }
            }
        }
    };
}

impl_handler_fn!();
impl_handler_fn!(A1);
impl_handler_fn!(A1, A2);
impl_handler_fn!(A1, A2, A3);
impl_handler_fn!(A1, A2, A3, A4);
impl_handler_fn!(A1, A2, A3, A4, A5);
impl_handler_fn!(A1, A2, A3, A4, A5, A6);
impl_handler_fn!(A1, A2, A3, A4, A5, A6, A7);
impl_handler_fn!(A1, A2, A3, A4, A5, A6, A7, A8);

/// A named, filtered handler, ready to be given to a listener.
///
/// `#[on_trigger]` functions become `Handler`s automatically; build one by hand for tests,
/// plugins or filters known only at run time:
///
/// ```
/// use listener_core::{Filter, Handler, Meta};
/// let h = Handler::new("log_github", Filter::new().toolkit("github"), |meta: Meta| async move {
///     println!("{} for {}", meta.trigger_slug(), meta.user_id());
/// });
/// assert_eq!(h.name(), "log_github");
/// ```
///
/// Its [`Policy`] (timeout, retries, concurrency, ordering) is set with the methods below,
/// the same settings as the `#[on_trigger]` keys of the same names:
///
/// ```
/// use std::time::Duration;
/// use listener_core::{Filter, Handler, Meta};
/// let h = Handler::new("reply", Filter::new().name("SLACK_RECEIVE_MESSAGE"), |meta: Meta| async move {
///     println!("attempt {}", meta.attempt());
/// })
/// .timeout(Duration::from_secs(30))
/// .retries(2)
/// .concurrency(4)
/// .sequential_by("payload.channel");
/// assert_eq!(h.policy().retries, 2);
/// ```
#[derive(Clone)]
pub struct Handler {
    name: Arc<str>,
    filter: Filter,
    func: HandlerFn,
    policy: Policy,
    /// A setting refused when it was given, reported when the listener is built.
    refused: Option<ConfigError>,
}

impl Handler {
    /// A handler running an `async fn` (or closure returning a future).
    pub fn new<F, Args>(name: impl Into<String>, filter: Filter, f: F) -> Self
    where
        F: AsyncHandlerFn<Args>,
    {
        Self::from_fn(name, filter, f.into_handler_fn())
    }

    /// A handler running a plain `fn` on the blocking pool.
    pub fn blocking<F, Args>(name: impl Into<String>, filter: Filter, f: F) -> Self
    where
        F: BlockingHandlerFn<Args>,
    {
        Self::from_fn(name, filter, f.into_handler_fn())
    }

    /// A handler from an already erased function.
    pub fn from_fn(name: impl Into<String>, filter: Filter, func: HandlerFn) -> Self {
        Handler {
            name: Arc::from(name.into()),
            filter,
            func,
            policy: Policy::default(),
            refused: None,
        }
    }

    /// Limits each attempt to `limit`, instead of the listener's
    /// [`handler_timeout`](crate::ListenerBuilder::handler_timeout). Must be longer than zero.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.policy.timeout = Some(limit);
        self
    }

    /// Runs a failed attempt again, up to `n` times (at most
    /// [`MAX_RETRIES`](crate::policy::MAX_RETRIES)), after a delay that starts at
    /// [`retry_delay`](Self::retry_delay) and doubles (with jitter, capped at
    /// [`RETRY_DELAY_CAP`](crate::policy::RETRY_DELAY_CAP)). The attempt number reaches the
    /// handler through [`Meta::attempt`](crate::Meta::attempt); the error hook hears only
    /// of a run whose last attempt failed.
    pub fn retries(mut self, n: u32) -> Self {
        self.policy.retries = n;
        self
    }

    /// The delay before the first retry (default
    /// [`DEFAULT_RETRY_DELAY`](crate::policy::DEFAULT_RETRY_DELAY)).
    pub fn retry_delay(mut self, first: Duration) -> Self {
        self.policy.retry_backoff = retry_backoff(first);
        self
    }

    /// At most `n` runs of this handler at once (at least 1). Runs waiting for their turn
    /// count against the listener's in-flight bound.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.policy.concurrency = Some(n);
        self
    }

    /// Runs of this handler for events with the same key (read at `path`, see
    /// [`KeyPath`]) run one at a time, in the order the events arrived; different keys run
    /// in parallel. A path that does not parse is reported when the listener is built.
    pub fn sequential_by(mut self, path: &str) -> Self {
        match KeyPath::parse(path) {
            Ok(path) => self.policy.sequential_by = Some(path),
            Err(mut e) => {
                e.key = format!("handler `{}`: {}", self.name, e.key);
                self.refused.get_or_insert(e);
            }
        }
        self
    }

    /// The handler's policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks the handler's settings, when the listener is built.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match &self.refused {
            Some(refused) => Err(refused.clone()),
            None => self.policy.validate(&self.name),
        }
    }

    /// The handler's name (the function's path for `#[on_trigger]` handlers).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The handler's filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Whether the handler runs on the blocking pool.
    pub fn is_blocking(&self) -> bool {
        self.func.blocking
    }

    /// Checks the handler's extractors against the listener's state.
    pub(crate) fn check(&self, state: &StateMap) -> Result<(), ExtractError> {
        self.func.inner.check(state, &self.name)
    }

    /// The erased function. Calling it runs the extractors (an async handler's run before
    /// its future is returned; a blocking one's on the blocking pool), then the body.
    pub(crate) fn erased(&self) -> &dyn Erased {
        &*self.func.inner
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("filter", &self.filter)
            .field("blocking", &self.func.blocking)
            .field("policy", &self.policy)
            .finish()
    }
}
