//! The Pusher client's frame handling and chunk reassembly, driven by a sequence of frames:
//! chunks out of order, repeated, with gaps, oversized, under interleaved ids, expiring,
//! malformed; the reassembler checked against a model after every step.
//!
//! Input layout (see `reader.rs`): a limits byte (even: the defaults; odd: small bounds read
//! from the next bytes, zeros included), then operations until the input ends:
//! - `0`: a chunk frame as a server sends it: id (one of [`IDS`]), index, flags (final;
//!   `data` as an object rather than a JSON string; a large repeated text, past an
//!   event's bound (up to 4.3 MB, twice per input); another
//!   channel), the chunk text;
//! - `1`: a raw frame (any text), handled as the source handles frames;
//! - `2`: time passes (up to ~9 minutes);
//! - `3`: raw chunk data (any text) handed to the reassembler;
//! - `4`: the periodic sweep of expired events.
//!
//! Properties, after every operation: nothing panicked; the bounds hold (open events,
//! buffered bytes, bytes per event, chunks per event); the buffered bytes are exactly what
//! the buffered chunks account for; every event the model holds is buffered with exactly the
//! model's chunks, and every event that disappeared was expired, refused or reported as
//! evicted; a refused chunk dropped its id; an accepted chunk broke no rule (index below
//! the cap, not repeated, not past the final index, no second or conflicting final); an
//! event completes exactly when its indices `0..=final` are all there, and its body is
//! their concatenation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use listener_core::__fuzz::{Assembler, ChunkOutcome, CHUNK_OVERHEAD_BYTES};
use listener_core::decode;
use listener_core::source::pusher::protocol::{Frame, CHUNKED_TRIGGER_EVENT, TRIGGER_EVENT};
use listener_core::source::pusher::ChunkLimits;
use serde::Deserialize;

use crate::reader::Reader;

/// The channel the source is subscribed to.
const CHANNEL: &str = "private-pr_fuzz_triggers";

/// The chunked event ids the operations use: short, empty, non-ASCII, long (past what
/// messages show), with a quote.
pub const IDS: [&str; 8] = [
    "a",
    "b",
    "evt_1",
    "",
    "é✓",
    "id-that-is-longer-than-the-sixty-four-characters-messages-show-of-an-id-0123456789",
    "a\"b",
    "c",
];

/// One chunk, as the reassembler reads it.
#[derive(Deserialize)]
struct Chunk {
    id: String,
    index: u32,
    chunk: String,
    #[serde(rename = "final")]
    is_final: bool,
}

/// The id of a chunk that does not parse, if it names one.
#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// What the model knows of one event being reassembled.
#[derive(Default)]
struct Partial {
    started: Option<Instant>,
    chunks: BTreeMap<u32, String>,
    final_index: Option<u32>,
}

impl Partial {
    fn bytes(&self) -> usize {
        self.chunks.values().map(String::len).sum()
    }

    fn accounted(&self) -> usize {
        self.bytes() + self.chunks.len() * CHUNK_OVERHEAD_BYTES
    }

    fn complete(&self) -> bool {
        self.final_index
            .is_some_and(|f| (0..=f).all(|i| self.chunks.contains_key(&i)))
    }
}

struct Harness {
    limits: ChunkLimits,
    assembler: Assembler,
    model: BTreeMap<String, Partial>,
    now: Instant,
}

/// Runs the operations in `data`; panics on a violated property.
pub fn check(data: &[u8]) {
    let mut r = Reader::new(data);
    let limits = limits(&mut r);
    let mut h = Harness {
        limits,
        assembler: Assembler::new(limits),
        model: BTreeMap::new(),
        now: Instant::now(),
    };
    let mut steps = 0;
    let mut megabytes = 0;
    while !r.is_empty() && steps < 4096 {
        steps += 1;
        match r.u8() % 5 {
            0 => {
                let id = IDS[usize::from(r.u8()) % IDS.len()];
                let index = index(r.u8(), &limits);
                let flags = r.u8();
                let big = flags & 4 != 0;
                let text = if big {
                    let fill = char::from(b'a' + r.u8() % 26).to_string();
                    // Past an event's bound: 2 KB at most (the small bounds are 1 KiB at
                    // most), or with one more flag 4.3 MB (the default is 4 MiB), twice per
                    // input at most: megabytes are slow to go through.
                    let mega = flags & 16 != 0 && megabytes < 2;
                    megabytes += usize::from(mega);
                    let unit = if mega { 17 * 1024 } else { 8 };
                    fill.repeat(usize::from(r.u8()) * unit)
                } else {
                    String::from_utf8_lossy(r.short_bytes()).into_owned()
                };
                // A large text (letters) is written out rather than serialized: the harness
                // should spend its time in the code under test.
                let head = format!(r#"{{"id":{},"index":{index},"chunk":"#, quoted(id));
                let tail = format!(r#","final":{}}}"#, flags & 1 != 0);
                let text_json = if big {
                    format!("\"{text}\"")
                } else {
                    quoted(&text)
                };
                let chunk = format!("{head}{text_json}{tail}");
                let data = if flags & 2 != 0 {
                    chunk.clone()
                } else if big {
                    format!(r#""{}\"{text}\"{}""#, inner(&head), inner(&tail))
                } else {
                    quoted(&chunk)
                };
                let channel = if flags & 8 != 0 {
                    "private-other"
                } else {
                    CHANNEL
                };
                let frame = format!(
                    r#"{{"event":"{CHUNKED_TRIGGER_EVENT}","channel":"{channel}","data":{data}}}"#
                );
                h.frame(&frame, Some(&chunk));
            }
            1 => {
                let text = String::from_utf8_lossy(r.short_bytes()).into_owned();
                h.frame(&text, None);
            }
            2 => {
                h.now += Duration::from_millis(u64::from(r.u16()) * 8);
            }
            3 => {
                let data = String::from_utf8_lossy(r.short_bytes()).into_owned();
                h.push(&data);
            }
            _ => {
                let expected = h.expire();
                let evicted = h.assembler.evict_expired(h.now);
                assert_eq!(evicted, expected, "the sweep expired other events");
                let reported = h.assembler.take_dropped().len();
                assert_eq!(reported, expected, "each expired event is reported once");
                h.check_state();
            }
        }
    }
    // Everything still open expires eventually, and then nothing is held.
    h.now += limits.max_age + Duration::from_secs(1);
    h.assembler.evict_expired(h.now);
    assert_eq!(h.assembler.open_ids(), 0);
    assert_eq!(h.assembler.buffered_bytes(), 0);
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `s` escaped as in a JSON string, without the quotes.
fn inner(s: &str) -> String {
    let q = quoted(s);
    q[1..q.len() - 1].to_owned()
}

/// The bounds: the defaults, or small ones (zeros included) read from the input.
fn limits(r: &mut Reader<'_>) -> ChunkLimits {
    if r.u8() & 1 == 0 {
        return ChunkLimits::default();
    }
    ChunkLimits {
        max_chunks: u32::from(r.u8() % 24),
        max_bytes: usize::from(r.u16() % 1024),
        max_total_bytes: usize::from(r.u16() % 4096),
        max_open: usize::from(r.u8() % 12),
        max_age: Duration::from_millis(u64::from(r.u16()) * 4),
    }
}

/// A chunk index: mostly small, sometimes at the edges of the cap and of `u32`.
fn index(b: u8, limits: &ChunkLimits) -> u32 {
    match b {
        0..=239 => u32::from(b % 32),
        _ => [
            limits.max_chunks.saturating_sub(1),
            limits.max_chunks,
            limits.max_chunks.saturating_add(1),
            u32::MAX,
            u32::MAX - 1,
            999,
            1000,
            1 << 31,
        ][usize::from(b - 240) % 8],
    }
}

impl Harness {
    /// A text frame, handled as the Pusher source's session does; `sent` is the chunk data
    /// of a frame built as a server builds it, which must parse and unwrap to it.
    fn frame(&mut self, text: &str, sent: Option<&str>) {
        let frame = match (Frame::parse(text), sent) {
            (Ok(frame), _) => frame,
            (Err(e), Some(_)) => panic!("a server's chunk frame does not parse: {e}"),
            (Err(_), None) => return,
        };
        if let Some(sent) = sent {
            assert_eq!(frame.event, CHUNKED_TRIGGER_EVENT);
            let data = frame.data_text().expect("a server's chunk data unwraps");
            assert_eq!(data, sent, "the chunk data did not survive the frame");
        }
        let ours = frame.channel.as_deref() == Some(CHANNEL);
        match frame.event.as_ref() {
            CHUNKED_TRIGGER_EVENT if ours => {
                if let Ok(data) = frame.data_text() {
                    let data = data.into_owned();
                    self.push(&data);
                }
            }
            TRIGGER_EVENT if ours => {
                if let Ok(body) = frame.data_text() {
                    let _ = decode::decode(body.as_bytes());
                }
            }
            // The control frames whose data the session reads.
            "pusher:error" | "pusher:subscription_error" | "pusher:connection_established" => {
                let _ = frame.data_as::<serde_json::Value>();
            }
            _ => {}
        }
    }

    /// Removes what the model expects to have expired by now; how many.
    fn expire(&mut self) -> usize {
        let (now, max_age) = (self.now, self.limits.max_age);
        let before = self.model.len();
        self.model.retain(|_, p| {
            p.started
                .is_none_or(|started| now.duration_since(started) < max_age)
        });
        before - self.model.len()
    }

    /// Hands chunk data to the reassembler and checks the outcome against the model.
    fn push(&mut self, data: &str) {
        let expired = self.expire();
        let outcome = self.assembler.push(data, self.now);
        let reported = self.assembler.take_dropped().len();

        let parsed = serde_json::from_str::<Chunk>(data);
        // The id concerned, and whether the model must drop it.
        let touched = match (&parsed, &outcome) {
            (Err(_), Ok(_)) => panic!("a malformed chunk was accepted: {data:?}"),
            (Err(_), Err(_)) => {
                if let Ok(IdOnly { id }) = serde_json::from_str::<IdOnly>(data) {
                    self.model.remove(&id);
                    assert!(
                        self.assembler.buffered_chunks(&id).is_none(),
                        "a malformed chunk did not drop its id"
                    );
                }
                None
            }
            (Ok(chunk), Err(_)) => {
                self.model.remove(&chunk.id);
                assert!(
                    self.assembler.buffered_chunks(&chunk.id).is_none(),
                    "a refused chunk did not drop its id"
                );
                Some(chunk.id.clone())
            }
            (Ok(chunk), Ok(outcome)) => {
                self.accepted(chunk, outcome);
                Some(chunk.id.clone())
            }
        };

        // Events that disappeared without being the chunk's own were evicted: reported.
        let evicted: Vec<String> = self
            .model
            .keys()
            .filter(|id| Some(*id) != touched.as_ref())
            .filter(|id| self.assembler.buffered_chunks(id).is_none())
            .cloned()
            .collect();
        for id in &evicted {
            self.model.remove(id);
        }
        assert_eq!(
            reported,
            expired + evicted.len(),
            "every expired or evicted event is reported once"
        );
        self.check_state();
    }

    /// An accepted chunk: it broke no rule, and the event completes exactly when it should.
    fn accepted(&mut self, chunk: &Chunk, outcome: &ChunkOutcome) {
        let limits = self.limits;
        assert!(
            chunk.index < limits.max_chunks,
            "index past the cap accepted"
        );
        let now = self.now;
        let partial = self.model.entry(chunk.id.clone()).or_default();
        assert!(
            !partial.chunks.contains_key(&chunk.index),
            "a repeated index was accepted"
        );
        if let Some(f) = partial.final_index {
            assert!(chunk.index <= f, "an index past the final one was accepted");
            assert!(!chunk.is_final, "a second final chunk was accepted");
        }
        if chunk.is_final {
            assert!(
                partial.chunks.keys().all(|&i| i < chunk.index),
                "a final chunk below a buffered index was accepted"
            );
            partial.final_index = Some(chunk.index);
        }
        partial.started.get_or_insert(now);
        partial.chunks.insert(chunk.index, chunk.chunk.clone());
        assert!(
            partial.bytes() <= limits.max_bytes,
            "an event past max_bytes was accepted"
        );
        match outcome {
            ChunkOutcome::Pending => assert!(
                !partial.complete(),
                "all of 0..=final are there, yet the event is pending"
            ),
            ChunkOutcome::Complete(body) => {
                assert!(partial.complete(), "completed with an index missing");
                let expected: String = partial.chunks.values().map(String::as_str).collect();
                assert_eq!(*body, expected, "the body is not the concatenation");
                self.model.remove(&chunk.id);
                assert!(
                    self.assembler.buffered_chunks(&chunk.id).is_none(),
                    "a completed event is still buffered"
                );
                let _ = decode::decode(body.as_bytes());
            }
        }
    }

    /// The bounds hold and the reassembler holds exactly what the model does.
    fn check_state(&self) {
        let a = &self.assembler;
        let limits = self.limits;
        assert!(
            a.open_ids() <= limits.max_open,
            "{} events open, bound {}",
            a.open_ids(),
            limits.max_open
        );
        assert!(
            a.buffered_bytes() <= limits.max_total_bytes,
            "{} bytes buffered, bound {}",
            a.buffered_bytes(),
            limits.max_total_bytes
        );
        assert_eq!(a.open_ids(), self.model.len(), "open events");
        let accounted: usize = self.model.values().map(Partial::accounted).sum();
        assert_eq!(a.buffered_bytes(), accounted, "buffered bytes");
        for (id, partial) in &self.model {
            let buffered = a
                .buffered_chunks(id)
                .unwrap_or_else(|| panic!("event {id:?} is not buffered"));
            let expected: Vec<(u32, &str)> = partial
                .chunks
                .iter()
                .map(|(i, t)| (*i, t.as_str()))
                .collect();
            assert_eq!(buffered, expected, "the chunks of {id:?}");
            assert!(partial.bytes() <= limits.max_bytes);
            assert!(partial.chunks.len() <= limits.max_chunks as usize);
        }
    }
}
