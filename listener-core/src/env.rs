//! Reading settings from environment variables (through a lookup function, so tests and
//! embedders can supply their own).

use std::time::Duration;

use crate::error::{ConfigError, Error, Result};

/// `key`'s value parsed as `T`, `None` when unset or blank; `what` names the expected form
/// in the error.
pub(crate) fn parse_var<T: std::str::FromStr>(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &str,
    what: &str,
) -> Result<Option<T>> {
    match lookup(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            Error::Config(ConfigError {
                key: key.to_owned(),
                message: format!("`{}` is not {what}", crate::preview::truncate_chars(&v, 60)),
            })
        }),
    }
}

/// `secs` as a duration, refusing negative and non-finite values (naming `key`).
pub(crate) fn seconds(key: &str, secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        Error::Config(ConfigError {
            key: key.to_owned(),
            message: format!("{secs} is not a non-negative number of seconds"),
        })
    })
}
