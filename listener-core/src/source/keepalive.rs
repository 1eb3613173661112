//! Connection keepalive: ping after `idle` with nothing received, give the connection up when
//! nothing arrives within `pong_timeout` of the ping.
//!
//! One timer per connection, re-armed lazily: a frame only records the time (no timer work
//! on the hot path); when the timer fires early because frames arrived meanwhile, it is
//! moved to the real deadline.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

/// What the keepalive timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Silence for `idle`: send a ping (then call [`Keepalive::pinged`]).
    Ping,
    /// No answer within `pong_timeout` of the ping: the connection is dead.
    Dead,
}

pub(crate) struct Keepalive {
    idle: Duration,
    pong_timeout: Duration,
    last_seen: Instant,
    ping_sent: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl Keepalive {
    pub(crate) fn new(idle: Duration, pong_timeout: Duration) -> Self {
        let now = Instant::now();
        Keepalive {
            idle,
            pong_timeout,
            last_seen: now,
            ping_sent: None,
            timer: Box::pin(sleep_until(now + idle)),
        }
    }

    fn deadline(&self) -> Instant {
        match self.ping_sent {
            Some(at) => at + self.pong_timeout,
            None => self.last_seen + self.idle,
        }
    }

    /// Something arrived: the connection is alive.
    pub(crate) fn seen(&mut self) {
        self.last_seen = Instant::now();
        if self.ping_sent.take().is_some() {
            // The timer waits for the pong deadline; bring it back to the idle deadline.
            let deadline = self.deadline();
            self.timer.as_mut().reset(deadline);
        }
    }

    /// A ping was sent.
    pub(crate) fn pinged(&mut self) {
        let now = Instant::now();
        self.ping_sent = Some(now);
        self.timer.as_mut().reset(now + self.pong_timeout);
    }

    /// Completes when a ping is due or the connection is dead. Cancel-safe (for `select!`).
    pub(crate) async fn due(&mut self) -> Due {
        loop {
            self.timer.as_mut().await;
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return if self.ping_sent.is_some() {
                    Due::Dead
                } else {
                    Due::Ping
                };
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_after_silence_and_declares_death_without_an_answer() {
        let mut k = Keepalive::new(Duration::from_secs(10), Duration::from_secs(3));
        let start = Instant::now();
        assert_eq!(k.due().await, Due::Ping);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        k.pinged();
        assert_eq!(k.due().await, Due::Dead);
        assert_eq!(start.elapsed(), Duration::from_secs(13));
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_postpones_the_ping_and_an_answer_cancels_death() {
        let mut k = Keepalive::new(Duration::from_secs(10), Duration::from_secs(3));
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(6)).await;
        k.seen();
        assert_eq!(k.due().await, Due::Ping);
        assert_eq!(start.elapsed(), Duration::from_secs(16));
        k.pinged();
        tokio::time::sleep(Duration::from_secs(1)).await;
        k.seen();
        assert_eq!(k.due().await, Due::Ping);
        assert_eq!(start.elapsed(), Duration::from_secs(27));
    }
}
