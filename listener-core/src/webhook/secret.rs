//! Webhook signing secrets and the HMAC keys they stand for.

use std::fmt;

use base64::Engine;

use super::VerifyError;

/// How a secret string becomes an HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretScheme {
    /// Composio's SDKs: the whole secret string's UTF-8 bytes, `whsec_` prefix included.
    Composio,
    /// The Standard Webhooks specification: the base64 that follows `whsec_` (the prefix
    /// is optional), decoded.
    StandardWebhooks,
}

/// A webhook secret, with its scheme when known.
///
/// A secret given without a scheme is tried both ways when it starts with `whsec_` (and the
/// rest is valid base64), raw otherwise. Debug output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    value: String,
    scheme: Option<SecretScheme>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("scheme", &self.scheme)
            .field("value", &"<redacted>")
            .finish()
    }
}

fn standard_key(value: &str) -> Option<Vec<u8>> {
    let b64 = value.strip_prefix("whsec_").unwrap_or(value);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .filter(|k| !k.is_empty())
}

impl WebhookSecret {
    /// A secret of unknown scheme (what `COMPOSIO_WEBHOOK_SECRET` holds).
    pub fn new(value: impl Into<String>) -> Self {
        WebhookSecret {
            value: value.into(),
            scheme: None,
        }
    }

    /// A secret used Composio's way: its UTF-8 bytes are the key.
    pub fn composio(value: impl Into<String>) -> Self {
        WebhookSecret {
            value: value.into(),
            scheme: Some(SecretScheme::Composio),
        }
    }

    /// A Standard Webhooks secret (`whsec_` + base64); refused if the base64 is invalid.
    pub fn standard(value: impl Into<String>) -> Result<Self, VerifyError> {
        let value = value.into();
        if standard_key(&value).is_none() {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(WebhookSecret {
            value,
            scheme: Some(SecretScheme::StandardWebhooks),
        })
    }

    /// The scheme, when given.
    pub fn scheme(&self) -> Option<SecretScheme> {
        self.scheme
    }

    /// The HMAC keys to try, in order. An empty key is never used: anyone could sign with
    /// it.
    pub(crate) fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys = self.all_keys();
        keys.retain(|k| !k.is_empty());
        keys
    }

    /// Whether this secret yields at least one key to verify with.
    pub(crate) fn is_usable(&self) -> bool {
        !self.keys().is_empty()
    }

    fn all_keys(&self) -> Vec<Vec<u8>> {
        match self.scheme {
            Some(SecretScheme::Composio) => vec![self.value.as_bytes().to_vec()],
            Some(SecretScheme::StandardWebhooks) => standard_key(&self.value).into_iter().collect(),
            None => {
                let mut keys = vec![self.value.as_bytes().to_vec()];
                if self.value.starts_with("whsec_") {
                    keys.extend(standard_key(&self.value));
                }
                keys
            }
        }
    }

    /// The key used to sign: the scheme's key (raw bytes when the scheme is unknown, as
    /// Composio's senders do).
    pub(crate) fn signing_key(&self) -> Vec<u8> {
        match self.scheme {
            Some(SecretScheme::StandardWebhooks) => standard_key(&self.value).unwrap_or_default(),
            _ => self.value.as_bytes().to_vec(),
        }
    }
}
