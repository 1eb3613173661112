//! Reassembling `chunked-…` events: `{"id", "index", "chunk", "final"}` pieces joined in
//! index order once indices `0..=final` are all present (PROTOCOL.md §1.4).
//!
//! Bounded everywhere, so a hostile or broken sender cannot grow memory: chunks per id,
//! bytes per id, open ids (the oldest is evicted), and the age of an incomplete id. A
//! malformed chunk drops that id's partial buffer.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Bounds on chunk reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Most chunks one event may have.
    pub max_chunks: u32,
    /// Most bytes one event may reassemble to.
    pub max_bytes: usize,
    /// Most events being reassembled at once; a new one evicts the oldest.
    pub max_open: usize,
    /// An incomplete event older than this is dropped.
    pub max_age: Duration,
}

impl Default for ChunkLimits {
    /// 1,024 chunks, 16 MiB per event, 64 open events, 60 s.
    fn default() -> Self {
        ChunkLimits {
            max_chunks: 1024,
            max_bytes: 16 << 20,
            max_open: 64,
            max_age: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    id: String,
    index: u32,
    chunk: String,
    #[serde(rename = "final")]
    is_final: bool,
}

#[derive(Debug)]
struct Partial {
    started: Instant,
    chunks: BTreeMap<u32, String>,
    bytes: usize,
    final_index: Option<u32>,
}

/// What one chunk frame led to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChunkOutcome {
    /// Stored; the event is not complete yet.
    Pending,
    /// The event is complete: its reassembled body.
    Complete(String),
}

/// The reassembly buffers of one connection.
#[derive(Debug)]
pub(crate) struct Assembler {
    limits: ChunkLimits,
    open: HashMap<String, Partial>,
    dropped: Vec<String>,
}

impl Assembler {
    pub(crate) fn new(limits: ChunkLimits) -> Self {
        Assembler {
            limits,
            open: HashMap::new(),
            dropped: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn open_ids(&self) -> usize {
        self.open.len()
    }

    /// Takes one chunk frame's data. Errors name what was wrong; the id concerned (if it
    /// could be read) is dropped.
    pub(crate) fn push(&mut self, data: &str, now: Instant) -> Result<ChunkOutcome, String> {
        self.evict_expired(now);
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                // Drop the id's buffer if the frame at least names one.
                #[derive(Deserialize)]
                struct IdOnly {
                    id: String,
                }
                let dropped = serde_json::from_str::<IdOnly>(data).ok().map(|i| i.id);
                if let Some(id) = &dropped {
                    self.open.remove(id);
                }
                return Err(match dropped {
                    Some(id) => format!(
                        "malformed chunk of `{}` ({e}); its partial event was dropped",
                        short(&id)
                    ),
                    None => format!("malformed chunk ({e})"),
                });
            }
        };
        let id = chunk.id;
        if chunk.index >= self.limits.max_chunks {
            self.open.remove(&id);
            return Err(format!(
                "chunk index {} of `{}` exceeds the limit of {} chunks; dropped",
                chunk.index,
                short(&id),
                self.limits.max_chunks
            ));
        }
        if !self.open.contains_key(&id) && self.open.len() >= self.limits.max_open {
            self.evict_oldest();
        }
        let partial = self.open.entry(id.clone()).or_insert_with(|| Partial {
            started: now,
            chunks: BTreeMap::new(),
            bytes: 0,
            final_index: None,
        });
        let problem = if partial.final_index.is_some_and(|f| chunk.index > f) {
            Some(format!(
                "chunk index {} is past the final index",
                chunk.index
            ))
        } else if chunk.is_final
            && (partial.final_index.is_some() || partial.chunks.keys().any(|&i| i > chunk.index))
        {
            Some("conflicting final chunk".to_owned())
        } else if partial.chunks.contains_key(&chunk.index) {
            Some(format!("chunk index {} repeated", chunk.index))
        } else if partial.bytes + chunk.chunk.len() > self.limits.max_bytes {
            Some(format!("event exceeds {} bytes", self.limits.max_bytes))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.open.remove(&id);
            return Err(format!("`{}`: {problem}; dropped", short(&id)));
        }
        partial.bytes += chunk.chunk.len();
        partial.chunks.insert(chunk.index, chunk.chunk);
        if chunk.is_final {
            partial.final_index = Some(chunk.index);
        }
        match partial.final_index {
            Some(last) if partial.chunks.len() as u64 == u64::from(last) + 1 => {
                // Keys are unique and all <= last, so len == last + 1 means 0..=last are all here.
                let partial = self.open.remove(&id).map(|p| p.chunks).unwrap_or_default();
                let mut body = String::with_capacity(partial.values().map(String::len).sum());
                for piece in partial.into_values() {
                    body.push_str(&piece);
                }
                Ok(ChunkOutcome::Complete(body))
            }
            _ => Ok(ChunkOutcome::Pending),
        }
    }

    /// Drops incomplete events older than the age limit; returns how many.
    pub(crate) fn evict_expired(&mut self, now: Instant) -> usize {
        let max_age = self.limits.max_age;
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, p)| now.duration_since(p.started) >= max_age)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            if let Some(p) = self.open.remove(id) {
                self.dropped.push(format!(
                    "incomplete chunked event `{}` expired after {max_age:?} with {} chunk(s) (final index {}); dropped",
                    short(id),
                    p.chunks.len(),
                    p.final_index.map_or_else(|| "unknown".to_owned(), |f| f.to_string()),
                ));
            }
        }
        expired.len()
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self
            .open
            .iter()
            .min_by_key(|(_, p)| p.started)
            .map(|(id, _)| id.clone())
        {
            self.open.remove(&oldest);
            self.dropped.push(format!(
                "more than {} chunked events in progress; the oldest, `{}`, was dropped",
                self.limits.max_open,
                short(&oldest)
            ));
        }
    }

    /// Incomplete events dropped (expired or evicted) since the last call, described.
    pub(crate) fn take_dropped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped)
    }
}

fn short(id: &str) -> String {
    crate::preview::truncate_chars(id, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: &str, index: u32, chunk: &str, last: bool) -> String {
        serde_json::json!({"id": id, "index": index, "chunk": chunk, "final": last}).to_string()
    }

    fn limits() -> ChunkLimits {
        ChunkLimits {
            max_chunks: 8,
            max_bytes: 32,
            max_open: 2,
            max_age: Duration::from_secs(10),
        }
    }

    #[test]
    fn out_of_order_chunks_reassemble_once_complete() {
        let mut a = Assembler::new(limits());
        let t = Instant::now();
        assert_eq!(
            a.push(&frame("x", 2, "c", true), t).unwrap(),
            ChunkOutcome::Pending
        );
        assert_eq!(
            a.push(&frame("x", 0, "a", false), t).unwrap(),
            ChunkOutcome::Pending
        );
        assert_eq!(
            a.push(&frame("x", 1, "b", false), t).unwrap(),
            ChunkOutcome::Complete("abc".into())
        );
        assert_eq!(a.open_ids(), 0);
    }

    #[test]
    fn a_gap_never_completes_and_expires() {
        let mut a = Assembler::new(limits());
        let t = Instant::now();
        a.push(&frame("g", 0, "a", false), t).unwrap();
        assert_eq!(
            a.push(&frame("g", 2, "c", true), t).unwrap(),
            ChunkOutcome::Pending
        );
        assert_eq!(a.open_ids(), 1);
        assert_eq!(a.evict_expired(t + Duration::from_secs(9)), 0);
        assert_eq!(a.evict_expired(t + Duration::from_secs(10)), 1);
        assert_eq!(a.open_ids(), 0);
        let dropped = a.take_dropped();
        assert_eq!(dropped.len(), 1);
        assert!(
            dropped[0].contains("`g`")
                && dropped[0].contains("2 chunk(s)")
                && dropped[0].contains("final index 2"),
            "{dropped:?}"
        );
        assert!(a.take_dropped().is_empty());
    }

    #[test]
    fn malformed_chunks_drop_their_id() {
        let mut a = Assembler::new(limits());
        let t = Instant::now();
        a.push(&frame("m", 0, "a", false), t).unwrap();
        let err = a
            .push(r#"{"id":"m","index":"one","chunk":"b","final":true}"#, t)
            .unwrap_err();
        assert!(err.contains("malformed") && err.contains("`m`"), "{err}");
        assert_eq!(a.open_ids(), 0);
        assert!(a.push("not json", t).is_err());
        assert!(a.push(r#"{"index":0}"#, t).is_err());
        assert!(a
            .push(r#"{"id":"n","index":-1,"chunk":"x","final":true}"#, t)
            .is_err());
    }

    #[test]
    fn bounds_hold() {
        let mut a = Assembler::new(limits());
        let t = Instant::now();
        // Too many chunks.
        assert!(a
            .push(&frame("big", 8, "x", false), t)
            .unwrap_err()
            .contains("limit of 8"));
        // Too many bytes.
        a.push(&frame("b", 0, &"x".repeat(30), false), t).unwrap();
        assert!(a
            .push(&frame("b", 1, "xyz", true), t)
            .unwrap_err()
            .contains("32 bytes"));
        assert_eq!(a.open_ids(), 0);
        // Too many open ids: the oldest goes.
        a.push(&frame("1", 0, "a", false), t).unwrap();
        a.push(&frame("2", 0, "a", false), t + Duration::from_millis(1))
            .unwrap();
        a.push(&frame("3", 0, "a", false), t + Duration::from_millis(2))
            .unwrap();
        assert_eq!(a.open_ids(), 2);
        assert!(a.take_dropped()[0].contains("`1`"));
        // "1" was evicted: finishing it now cannot complete (index 0 is gone).
        assert_eq!(
            a.push(&frame("1", 1, "b", true), t + Duration::from_millis(3))
                .unwrap(),
            ChunkOutcome::Pending
        );
    }

    #[test]
    fn repeated_or_conflicting_indices_drop_the_id() {
        let mut a = Assembler::new(limits());
        let t = Instant::now();
        a.push(&frame("r", 0, "a", false), t).unwrap();
        assert!(a
            .push(&frame("r", 0, "a", false), t)
            .unwrap_err()
            .contains("repeated"));
        a.push(&frame("f", 1, "b", true), t).unwrap();
        assert!(a
            .push(&frame("f", 2, "c", false), t)
            .unwrap_err()
            .contains("past the final"));
        a.push(&frame("h", 3, "d", false), t).unwrap();
        assert!(a
            .push(&frame("h", 1, "b", true), t)
            .unwrap_err()
            .contains("conflicting final"));
        assert_eq!(a.open_ids(), 0);
    }

    #[test]
    fn a_single_final_chunk_is_a_whole_event() {
        let mut a = Assembler::new(limits());
        assert_eq!(
            a.push(&frame("s", 0, "{}", true), Instant::now()).unwrap(),
            ChunkOutcome::Complete("{}".into())
        );
    }
}
