//! Lenient field access: identity fields that are missing, `null` or not strings become "".

use serde_json::{Map, Value};

/// Removes `key` and returns it if it is a string; anything else (missing, null, number,
/// object…) becomes `""`.
pub(super) fn take_str(map: &mut Map<String, Value>, key: &str) -> String {
    match map.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Borrows `key` as a string, `""` if it is missing or not a string.
pub(super) fn get_str<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Removes `key` and returns it if it is an object; anything else becomes an empty object.
pub(super) fn take_object(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Removes `key` and returns it if it is a string, `None` otherwise.
pub(super) fn take_opt_str(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// A bounded, comma-separated list of an object's keys, for error messages.
pub(super) fn key_list(map: &Map<String, Value>) -> String {
    const MAX_KEYS: usize = 12;
    const MAX_KEY_CHARS: usize = 40;
    let mut out = String::new();
    for (i, key) in map.keys().enumerate() {
        if i == MAX_KEYS {
            out.push_str(&format!(", … ({} keys)", map.len()));
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&crate::preview::truncate_chars(key, MAX_KEY_CHARS));
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// A field read leniently straight from the wire: missing, a string (borrowed when it has
/// no escapes), or anything else. The typed fast path treats it as `take_str` does: only a
/// string counts, everything else becomes `""`. Whatever it reads is fully validated (as a
/// `Value` parse would), only not kept.
#[derive(Debug, Default)]
pub(super) enum Lenient<'a> {
    /// The key was not there.
    #[default]
    Missing,
    /// A JSON string.
    Str(std::borrow::Cow<'a, str>),
    /// Any other JSON value, `null` included (validated, not kept).
    Other,
}

impl Lenient<'_> {
    /// The string, or `""` for anything else.
    pub(super) fn into_string(self) -> String {
        match self {
            Lenient::Str(s) => s.into_owned(),
            Lenient::Missing | Lenient::Other => String::new(),
        }
    }

    /// The string, or `None` for anything else.
    pub(super) fn into_opt_string(self) -> Option<String> {
        match self {
            Lenient::Str(s) => Some(s.into_owned()),
            Lenient::Missing | Lenient::Other => None,
        }
    }

    /// Whether the key was there.
    pub(super) fn is_present(&self) -> bool {
        !matches!(self, Lenient::Missing)
    }
}

/// Any JSON value, read through and validated exactly as a `Value` parse would (UTF-8,
/// escapes, number range, nesting depth) but not kept. `serde::de::IgnoredAny` would skip
/// without those checks, and the fast path must refuse what the general path refuses.
pub(super) struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Skip;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            // A string with escapes arrives unescaped in a scratch buffer: seen, not copied.
            fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_none<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
                skip_seq(seq)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
                skip_map(map)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Reads every element through [`Skip`].
fn skip_seq<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Skip, A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(Skip)
}

/// Reads every entry through [`Skip`].
fn skip_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Skip, A::Error> {
    while map.next_entry::<Skip, Skip>()?.is_some() {}
    Ok(Skip)
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient::Str(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient::Str(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient::Str(std::borrow::Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                skip_seq(seq).map(|_| Lenient::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|_| Lenient::Other)
            }
        }
        d.deserialize_any(Visitor)
    }
}
