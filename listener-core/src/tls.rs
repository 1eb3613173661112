//! TLS set-up shared by the websocket and HTTP clients.

/// Makes rustls' `ring` provider the process default unless one is installed already (the
/// TLS stacks here are built with `ring` only; an application's own choice is kept).
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is then in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
