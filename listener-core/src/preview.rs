//! Bounded previews of untrusted input for logs: frames carry personal data, so a log line
//! never holds more than a few hundred characters of one.

/// The default number of characters a preview keeps.
pub const PREVIEW_CHARS: usize = 160;

/// A log-safe preview of raw bytes: lossy UTF-8, control characters escaped, at most
/// `max_chars` characters, followed by the total size when cut.
///
/// ```
/// let p = listener_core::preview::preview(b"hello world", 5);
/// assert_eq!(p, "hello… (11 bytes)");
/// ```
pub fn preview(bytes: &[u8], max_chars: usize) -> String {
    // Decode no more than needed: a char is at most 4 bytes.
    let head = &bytes[..bytes.len().min(max_chars.saturating_mul(4))];
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(max_chars.min(text.len()) + 24);
    let mut cut = head.len() < bytes.len();
    for (taken, ch) in text.chars().enumerate() {
        if taken == max_chars {
            cut = true;
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    if cut {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}

/// Truncates a string to at most `max_chars` characters, marking the cut with `…`.
pub fn truncate_chars(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

/// The JSON type of a value, for error messages: `null`, `a boolean`, `a number`,
/// `a string`, `an array`, `an object`.
pub fn json_type(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_kept_whole() {
        assert_eq!(preview(b"{\"a\":1}", 160), "{\"a\":1}");
    }

    #[test]
    fn long_input_is_cut_and_sized() {
        let big = vec![b'x'; 1_000_000];
        let p = preview(&big, 10);
        assert_eq!(p, format!("{}… (1000000 bytes)", "x".repeat(10)));
    }

    #[test]
    fn control_characters_are_escaped_and_bad_utf8_replaced() {
        let p = preview(b"a\nb\x1b[31m\xff", 160);
        assert_eq!(p, "a\\nb\\u{1b}[31m\u{fffd}");
        assert!(!p.contains('\n'));
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        let s = "é".repeat(50);
        let p = preview(s.as_bytes(), 7);
        assert!(p.starts_with(&"é".repeat(7)));
        assert_eq!(truncate_chars(&s, 3), "ééé…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
