//! The provisioning batch window: it opens when pods start waiting and
//! closes once no pod has arrived for `idle_ms`, or `max_ms` after it
//! opened, so a burst of pods is planned in one round (Karpenter's
//! `BATCH_IDLE_DURATION` 1 s and `BATCH_MAX_DURATION` 10 s).

#[derive(Debug, Clone)]
pub struct Batcher {
    idle_ms: u64,
    max_ms: u64,
    opened_ms: Option<u64>,
}

impl Batcher {
    pub fn new(idle_ms: u64, max_ms: u64) -> Self {
        Self {
            idle_ms,
            max_ms,
            opened_ms: None,
        }
    }

    /// Whether the window closed at `now_ms`. `waiting`: pods are waiting;
    /// `last_change_ms`: when the set of waiting pods last changed. A
    /// closed window reopens with the next waiting pod.
    pub fn ready(&mut self, now_ms: u64, waiting: bool, last_change_ms: u64) -> bool {
        if !waiting {
            self.opened_ms = None;
            return false;
        }
        let opened = *self.opened_ms.get_or_insert(now_ms);
        let idle = now_ms.saturating_sub(last_change_ms) >= self.idle_ms;
        let full = now_ms.saturating_sub(opened) >= self.max_ms;
        if idle || full {
            self.opened_ms = None;
            true
        } else {
            false
        }
    }

    /// Whether a window is open (pods are being collected).
    pub fn open(&self) -> bool {
        self.opened_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_after_a_quiet_second() {
        let mut b = Batcher::new(1_000, 10_000);
        assert!(!b.ready(0, true, 0));
        assert!(b.open());
        assert!(b.ready(1_000, true, 0));
        assert!(!b.open());
    }

    #[test]
    fn a_steady_stream_closes_at_the_maximum() {
        let mut b = Batcher::new(1_000, 10_000);
        for t in (0..10_000).step_by(500) {
            assert!(!b.ready(t, true, t), "still arriving at {t}");
        }
        assert!(b.ready(10_000, true, 10_000));
    }

    #[test]
    fn nothing_waiting_keeps_it_shut() {
        let mut b = Batcher::new(1_000, 10_000);
        assert!(!b.ready(5_000, false, 0));
        assert!(!b.open());
    }
}
