//! Internals the fuzz targets (`fuzz/` at the repository root) drive directly: the two
//! decode paths, each other's oracle, and one connection's chunk reassembler.
//!
//! Compiled only with the `fuzzing` feature. **Not a public API**: unstable, undocumented
//! outside this module, and it changes without notice; nothing but the fuzz targets and the
//! tests that replay their findings should use it.

use crate::decode::DecodeError;
use crate::event::TriggerEvent;

/// The V3 fast path alone (after the byte order mark is skipped): `Some` for a body it
/// reads completely, `None` for one it leaves to the general path.
pub fn decode_fast(bytes: &[u8]) -> Option<TriggerEvent> {
    crate::decode::fuzz_fast(bytes)
}

/// What a JetStream relay decodes: the same bodies as [`decode`](crate::decode::decode)
/// with the same identity (delivery id, slug, toolkit, type, envelope); a V3 trigger
/// message has nothing else (its payload validated, not built).
pub fn decode_identity(bytes: &[u8]) -> Result<TriggerEvent, DecodeError> {
    crate::decode::decode_identity(bytes)
}

/// The general path alone (after the byte order mark is skipped): parse into a `Value`,
/// detect the envelope, take the fields apart.
pub fn decode_general(bytes: &[u8]) -> Result<TriggerEvent, DecodeError> {
    crate::decode::fuzz_general(bytes)
}

#[cfg(feature = "realtime")]
pub use crate::source::pusher::chunks::CHUNK_OVERHEAD_BYTES;
#[cfg(feature = "realtime")]
pub use chunks::{Assembler, ChunkOutcome, Push};

#[cfg(feature = "realtime")]
mod chunks {
    use std::time::Instant;

    use crate::source::pusher::chunks;
    use crate::source::pusher::ChunkLimits;

    /// What one chunk frame led to (the reassembler's own outcome).
    #[derive(Debug, PartialEq, Eq)]
    pub enum ChunkOutcome {
        /// Stored; the event is not complete yet.
        Pending,
        /// The event is complete: its reassembled body.
        Complete(String),
    }

    /// What [`Assembler::push`] returns: the outcome, or why the chunk was refused.
    pub type Push = Result<ChunkOutcome, String>;

    /// One connection's chunk reassembler, as the Pusher source uses it.
    #[derive(Debug)]
    pub struct Assembler(chunks::Assembler);

    impl Assembler {
        /// A reassembler with these bounds.
        pub fn new(limits: ChunkLimits) -> Self {
            Assembler(chunks::Assembler::new(limits))
        }

        /// Takes one chunk frame's data (the unwrapped `data` of a `chunked-…` frame).
        pub fn push(&mut self, data: &str, now: Instant) -> Push {
            self.0.push(data, now).map(|outcome| match outcome {
                chunks::ChunkOutcome::Pending => ChunkOutcome::Pending,
                chunks::ChunkOutcome::Complete(body) => ChunkOutcome::Complete(body),
            })
        }

        /// Drops incomplete events older than the age bound; returns how many.
        pub fn evict_expired(&mut self, now: Instant) -> usize {
            self.0.evict_expired(now)
        }

        /// What was dropped (expired or evicted) since the last call, described.
        pub fn take_dropped(&mut self) -> Vec<String> {
            self.0.take_dropped()
        }

        /// Events being reassembled.
        pub fn open_ids(&self) -> usize {
            self.0.open_ids()
        }

        /// Bytes buffered, as counted against `max_total_bytes`.
        pub fn buffered_bytes(&self) -> usize {
            self.0.buffered_bytes()
        }

        /// The chunk indices buffered for `id`, in order, with their text (`None` when `id`
        /// is not being reassembled).
        pub fn buffered_chunks(&self, id: &str) -> Option<Vec<(u32, &str)>> {
            self.0.buffered_chunks(id)
        }
    }
}
