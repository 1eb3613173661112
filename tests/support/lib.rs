//! Shared helpers for the end-to-end tests: fixtures, recording handlers, scripted peers,
//! and locating the third-party peers that `scripts/install-peers.sh` installs.

#![allow(missing_docs)]

pub mod fake_apis;
pub mod fixtures;
pub mod http;
pub mod nats;
pub mod peers;
pub mod prometheus;
pub mod proxy;
pub mod pusher;
pub mod receiver;
pub mod record;
pub mod runs;
pub mod source;
pub mod wait;
pub mod webhook;
pub mod ws_server;
