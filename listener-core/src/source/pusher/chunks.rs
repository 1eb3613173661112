//! Reassembling `chunked-…` events: `{"id", "index", "chunk", "final"}` pieces joined in
//! index order once indices `0..=final` are all present.
//!
//! Bounded everywhere, so a hostile or broken sender cannot grow memory: the chunk index,
//! bytes per id, bytes across all open ids, open ids (the oldest is evicted), and the age of
//! an incomplete id. A malformed chunk drops that id's partial buffer. Buffers are freed
//! when their id completes or is dropped, and the maps give their memory back once empty.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// What one buffered chunk is counted as beyond its text (its map entry and allocation), so
/// that a flood of tiny chunks is bounded by [`ChunkLimits::max_total_bytes`] too.
pub const CHUNK_OVERHEAD_BYTES: usize = 64;

/// Bounds on chunk reassembly.
///
/// The defaults fit Composio's own limits (its CLI keeps at most 100 pending ids and 1,000
/// chunks per id; a Pusher message carries at most 10 KB) with room to spare, while keeping
/// what one connection can make us buffer to a few MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Most chunks one event may have; it caps the chunk index too (a chunk whose index is
    /// `max_chunks` or more is refused and its id dropped). Default 1,000.
    pub max_chunks: u32,
    /// Most bytes one event may reassemble to. Default 4 MiB.
    pub max_bytes: usize,
    /// Most bytes buffered across all events being reassembled (each chunk's text plus
    /// 64 bytes a chunk); when a chunk would pass it, the oldest other events are
    /// evicted (and reported) until it fits. Default 8 MiB.
    pub max_total_bytes: usize,
    /// Most events being reassembled at once; a new one evicts the oldest (0 refuses every
    /// chunked event). Default 100.
    pub max_open: usize,
    /// An incomplete event older than this is dropped. Default 60 s.
    pub max_age: Duration,
}

impl Default for ChunkLimits {
    /// 1,000 chunks and 4 MiB per event, 8 MiB across events, 100 open events, 60 s.
    fn default() -> Self {
        ChunkLimits {
            max_chunks: 1000,
            max_bytes: 4 << 20,
            max_total_bytes: 8 << 20,
            max_open: 100,
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
    /// Its place in [`Assembler::order`] among ids started at the same instant.
    seq: u64,
    chunks: BTreeMap<u32, String>,
    /// The text bytes of `chunks`.
    bytes: usize,
    final_index: Option<u32>,
}

impl Partial {
    /// What this partial event counts against [`ChunkLimits::max_total_bytes`].
    fn accounted(&self) -> usize {
        self.bytes + self.chunks.len() * CHUNK_OVERHEAD_BYTES
    }
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
    /// The ids of `open`, oldest first, so that expiry and eviction never scan every open
    /// id (with a large `max_open`, a scan per chunk made a flood quadratic).
    order: BTreeMap<(Instant, u64), String>,
    next_seq: u64,
    /// The sum of `accounted()` over `open`.
    buffered: usize,
    dropped: Vec<String>,
}

impl Assembler {
    pub(crate) fn new(limits: ChunkLimits) -> Self {
        Assembler {
            limits,
            open: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            buffered: 0,
            dropped: Vec::new(),
        }
    }

    /// Ids being reassembled.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn open_ids(&self) -> usize {
        self.open.len()
    }

    /// Bytes buffered across all open ids, as counted against `max_total_bytes`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// The chunks buffered for `id` (index and text, in index order), `None` if `id` is not
    /// open: what the fuzz target compares with its model.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn buffered_chunks(&self, id: &str) -> Option<Vec<(u32, &str)>> {
        let partial = self.open.get(id)?;
        Some(
            partial
                .chunks
                .iter()
                .map(|(index, text)| (*index, text.as_str()))
                .collect(),
        )
    }

    /// Removes `id`'s buffer, keeping the count right and giving memory back when the map
    /// empties.
    fn remove(&mut self, id: &str) -> Option<Partial> {
        let partial = self.open.remove(id)?;
        self.order.remove(&(partial.started, partial.seq));
        self.buffered = self.buffered.saturating_sub(partial.accounted());
        if self.open.is_empty() {
            self.open.shrink_to_fit();
            self.buffered = 0;
        }
        Some(partial)
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
                    self.remove(id);
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
        let Chunk {
            id,
            index,
            chunk: mut piece,
            is_final,
        } = chunk;
        if index >= self.limits.max_chunks {
            self.remove(&id);
            return Err(format!(
                "chunk index {index} of `{}` exceeds the limit of {} chunks; dropped",
                short(&id),
                self.limits.max_chunks
            ));
        }
        let problem = match self.open.get(&id) {
            Some(partial) if partial.final_index.is_some_and(|f| index > f) => {
                Some(format!("chunk index {index} is past the final index"))
            }
            Some(partial)
                if is_final
                    && (partial.final_index.is_some()
                        || partial.chunks.keys().any(|&i| i > index)) =>
            {
                Some("conflicting final chunk".to_owned())
            }
            Some(partial) if partial.chunks.contains_key(&index) => {
                Some(format!("chunk index {index} repeated"))
            }
            Some(partial) if partial.bytes + piece.len() > self.limits.max_bytes => {
                Some(format!("event exceeds {} bytes", self.limits.max_bytes))
            }
            None if piece.len() > self.limits.max_bytes => {
                Some(format!("event exceeds {} bytes", self.limits.max_bytes))
            }
            _ => None,
        };
        if let Some(problem) = problem {
            self.remove(&id);
            return Err(format!("`{}`: {problem}; dropped", short(&id)));
        }
        let cost = piece.len() + CHUNK_OVERHEAD_BYTES;
        if cost > self.limits.max_total_bytes {
            self.remove(&id);
            return Err(format!(
                "`{}`: a chunk of {} bytes exceeds the {}-byte bound on buffered chunks; dropped",
                short(&id),
                piece.len(),
                self.limits.max_total_bytes
            ));
        }
        // Room across ids: the oldest others go first. `id` itself stays (its own size is
        // bounded by max_bytes); if it is all that is left and still does not fit, it goes.
        while self.buffered + cost > self.limits.max_total_bytes {
            let why = format!(
                "chunk buffers over the bound of {} bytes",
                self.limits.max_total_bytes
            );
            if !self.evict_oldest_except(&id, &why) {
                self.remove(&id);
                return Err(format!(
                    "`{}`: buffered chunks would exceed {} bytes; dropped",
                    short(&id),
                    self.limits.max_total_bytes
                ));
            }
        }
        if !self.open.contains_key(&id) && self.open.len() >= self.limits.max_open {
            // A bound of 0 leaves no room even after evicting: nothing may be reassembled.
            if self.limits.max_open == 0 {
                return Err(format!(
                    "`{}`: no chunked event may be reassembled (the bound on open events is 0); dropped",
                    short(&id)
                ));
            }
            let why = format!(
                "more than {} chunked events in progress",
                self.limits.max_open
            );
            self.evict_oldest_except(&id, &why);
        }
        piece.shrink_to_fit();
        let partial = match self.open.entry(id.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.order.insert((now, seq), e.key().clone());
                e.insert(Partial {
                    started: now,
                    seq,
                    chunks: BTreeMap::new(),
                    bytes: 0,
                    final_index: None,
                })
            }
        };
        partial.bytes += piece.len();
        partial.chunks.insert(index, piece);
        if is_final {
            partial.final_index = Some(index);
        }
        self.buffered += cost;
        match partial.final_index {
            Some(last) if partial.chunks.len() as u64 == u64::from(last) + 1 => {
                // Keys are unique and all <= last, so len == last + 1 means 0..=last are all here.
                let pieces = self.remove(&id).map(|p| p.chunks).unwrap_or_default();
                let mut body = String::with_capacity(pieces.values().map(String::len).sum());
                for piece in pieces.into_values() {
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
        let mut expired = 0;
        // Oldest first: stop at the first one still young enough.
        while let Some((&(started, _), _)) = self.order.first_key_value() {
            if now.duration_since(started) < max_age {
                break;
            }
            let Some((_, id)) = self.order.pop_first() else {
                break;
            };
            expired += 1;
            if let Some(p) = self.remove(&id) {
                self.dropped.push(format!(
                    "incomplete chunked event `{}` expired after {max_age:?} with {} chunk(s) (final index {}); dropped",
                    short(&id),
                    p.chunks.len(),
                    p.final_index.map_or_else(|| "unknown".to_owned(), |f| f.to_string()),
                ));
            }
        }
        expired
    }

    /// Evicts the oldest open id other than `keep`, recording why; `false` if there is none.
    fn evict_oldest_except(&mut self, keep: &str, why: &str) -> bool {
        // `keep` is at most one of them: this looks at two entries at most.
        let Some(oldest) = self.order.values().find(|id| id.as_str() != keep).cloned() else {
            return false;
        };
        if let Some(p) = self.remove(&oldest) {
            self.dropped.push(format!(
                "{why}; the oldest, `{}`, was dropped with {} chunk(s), {} bytes",
                short(&oldest),
                p.chunks.len(),
                p.bytes,
            ));
        }
        true
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
            max_total_bytes: 1 << 20,
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

    /// The issue's flood, scaled: many distinct ids, each with big chunks that never
    /// complete. What is buffered never passes the bound, and every eviction is reported.
    #[test]
    fn a_flood_of_big_chunks_under_many_ids_stays_under_the_total_bound() {
        let limits = ChunkLimits::default();
        let mut a = Assembler::new(limits);
        let t = Instant::now();
        let piece = "x".repeat(900_000);
        let mut peak = 0;
        let mut reported = Vec::new();
        let mut refused = 0;
        // 20 ids x 6 chunks of 900 KB: 108 MB offered, none completing; before the total
        // bound, 64 ids of up to 16 MiB each could be held.
        for n in 0..120u32 {
            let id = format!("flood-{}", n / 6);
            let at = t + Duration::from_millis(u64::from(n));
            match a.push(&frame(&id, n % 6, &piece, false), at) {
                Ok(ChunkOutcome::Pending) => {}
                Ok(ChunkOutcome::Complete(_)) => panic!("nothing completes"),
                Err(_) => refused += 1,
            }
            peak = peak.max(a.buffered_bytes());
            assert!(
                a.buffered_bytes() <= limits.max_total_bytes,
                "{} buffered after chunk {n}",
                a.buffered_bytes()
            );
            reported.extend(a.take_dropped());
        }
        assert!(peak > limits.max_total_bytes - 1_000_000, "peak {peak}");
        // Each id reaches max_bytes (4 MiB) at its 5th chunk: refused, id dropped.
        assert_eq!(refused, 20, "one per id at its 5th chunk");
        assert!(!reported.is_empty());
        assert!(
            reported.iter().all(
                |r| r.contains("chunk buffers over the bound of 8388608 bytes")
                    && r.contains("`flood-")
            ),
            "{reported:?}"
        );
        // Expiry gives everything back.
        a.evict_expired(t + Duration::from_secs(3600));
        assert_eq!((a.open_ids(), a.buffered_bytes()), (0, 0));
        assert_eq!(a.open.capacity(), 0, "the map gave its memory back");
    }

    #[test]
    fn many_tiny_chunks_count_their_overhead() {
        let limits = ChunkLimits {
            max_total_bytes: 100 * (CHUNK_OVERHEAD_BYTES + 1),
            ..ChunkLimits::default()
        };
        let mut a = Assembler::new(limits);
        let t = Instant::now();
        let mut refused = Vec::new();
        for index in 0..500 {
            if a.push(&frame("tiny", index, "x", false), t).is_err() {
                refused.push(index);
            }
            assert!(a.buffered_bytes() <= limits.max_total_bytes);
        }
        // 100 one-byte chunks fill the bound; the 101st drops the id, which starts over.
        assert_eq!(refused, [100, 201, 302, 403]);
    }

    #[test]
    fn the_index_is_capped_and_a_completed_event_frees_its_buffers() {
        let mut a = Assembler::new(ChunkLimits::default());
        let t = Instant::now();
        let err = a.push(&frame("i", 1000, "x", true), t).unwrap_err();
        assert!(err.contains("exceeds the limit of 1000 chunks"), "{err}");
        assert!(a.push(&frame("i", u32::MAX, "x", true), t).is_err());
        a.push(&frame("i", 999, "b", true), t).unwrap();
        assert!(a.buffered_bytes() > 0);
        a.push(&frame("j", 0, "a", false), t).unwrap();
        assert_eq!(
            a.push(&frame("j", 1, "b", true), t).unwrap(),
            ChunkOutcome::Complete("ab".into())
        );
        assert_eq!(a.open_ids(), 1);
        assert_eq!(a.buffered_bytes(), 1 + CHUNK_OVERHEAD_BYTES);
    }

    #[test]
    fn a_chunk_alone_over_the_total_bound_is_refused() {
        let mut a = Assembler::new(ChunkLimits {
            max_total_bytes: 1000,
            ..ChunkLimits::default()
        });
        let t = Instant::now();
        a.push(&frame("small", 0, "a", false), t).unwrap();
        let err = a
            .push(&frame("big", 0, &"y".repeat(2000), false), t)
            .unwrap_err();
        assert!(err.contains("1000-byte bound"), "{err}");
        assert_eq!(a.open_ids(), 1, "nothing else was evicted for it");
    }

    /// Found by the `pusher_frames` fuzz target: with `max_open` 0 the first chunk of an
    /// event was kept anyway (one event open, over the bound).
    #[test]
    fn a_bound_of_zero_open_events_holds_none() {
        let mut a = Assembler::new(ChunkLimits {
            max_open: 0,
            ..limits()
        });
        let t = Instant::now();
        let err = a.push(&frame("z", 0, "a", false), t).unwrap_err();
        assert!(err.contains("bound on open events is 0"), "{err}");
        assert!(a.push(&frame("z", 0, "{}", true), t).is_err());
        assert_eq!((a.open_ids(), a.buffered_bytes()), (0, 0));
    }

    /// The attack bench's flood with the open-id bound raised: 100,000 distinct ids, never
    /// finished. Expiry and eviction used to scan every open id on every chunk (quadratic:
    /// minutes for this); with the age-ordered index it takes well under a second.
    #[test]
    fn a_flood_of_distinct_ids_under_a_large_open_bound_evicts_oldest_first() {
        let limits = ChunkLimits {
            max_open: 1_000_000,
            max_total_bytes: 20_000 * (1 + CHUNK_OVERHEAD_BYTES),
            ..ChunkLimits::default()
        };
        let mut a = Assembler::new(limits);
        let t = Instant::now();
        let mut evicted = 0;
        for n in 0..100_000u64 {
            let at = t + Duration::from_micros(n);
            a.push(&frame(&format!("f{n}"), 0, "x", false), at).unwrap();
            let dropped = a.take_dropped();
            if n < 20_000 {
                assert!(dropped.is_empty());
            } else {
                // Exactly one, the oldest still open.
                assert_eq!(dropped.len(), 1, "at {n}");
                assert!(
                    dropped[0].contains(&format!("`f{}`", n - 20_000)),
                    "{dropped:?}"
                );
            }
            evicted += dropped.len();
            assert!(a.buffered_bytes() <= limits.max_total_bytes);
        }
        assert_eq!(evicted, 80_000);
        assert_eq!((a.open_ids(), a.order.len()), (20_000, 20_000));
        // Expiry walks from the oldest and stops at the first young one.
        let cut = t + Duration::from_micros(89_999) + limits.max_age;
        assert_eq!(a.evict_expired(cut), 10_000);
        assert_eq!((a.open_ids(), a.order.len()), (10_000, 10_000));
        a.evict_expired(t + Duration::from_secs(3600));
        assert_eq!((a.open_ids(), a.order.len(), a.buffered_bytes()), (0, 0, 0));
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
