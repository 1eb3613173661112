//! An HTTP client for tests.
//!
//! The workspace builds reqwest with `rustls-no-provider` (listener-core picks `ring`), and
//! Cargo unifies features, so a client built before any provider is installed panics. This
//! installs `ring` first.

/// A reqwest client, safe to build in any test, first or not.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
