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
    let mut taken = 0;
    let mut cut = head.len() < bytes.len();
    for ch in text.chars() {
        if taken == max_chars {
            cut = true;
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
        taken += 1;
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
