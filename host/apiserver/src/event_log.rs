//! The ordered log of committed changes behind watches, with compaction.
//!
//! Each event keeps the object before the change too, so the store can rebuild any retained
//! revision for a paged or exact list. Events older than the retained window are compacted away;
//! asking for them is the 410 a real server gives for a compacted etcd revision.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::stored::Stored;

/// Where an object lives: storage key of its resource (`pods`, `deployments.apps`), namespace
/// (empty for cluster-scoped) and name. Ordered as a real server lists: by namespace, then name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

/// The kind of a committed change, as the watch protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change at one resourceVersion.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub resource_version: u64,
    pub event_type: EventType,
    pub key: ObjectKey,
    /// The object after the change; for a deletion, the last state with the deletion's
    /// resourceVersion.
    pub object: Arc<Stored>,
    /// The object before the change (`None` for a creation).
    pub previous: Option<Arc<Stored>>,
}

/// The requested revision is older than what the log retains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub requested: u64,
    /// The oldest revision a watch or list can still start from.
    pub oldest: u64,
}

/// Bounded log of events in commit order.
#[derive(Debug, Clone)]
pub struct EventLog {
    events: VecDeque<Event>,
    capacity: usize,
    /// Every event with a resourceVersion above this is retained.
    oldest: u64,
}

impl EventLog {
    /// A log retaining at most `capacity` events, starting at revision `start`.
    pub fn new(capacity: usize, start: u64) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            oldest: start,
        }
    }

    pub fn push(&mut self, event: Event) {
        debug_assert!(
            self.events
                .back()
                .is_none_or(|e| e.resource_version < event.resource_version)
        );
        self.events.push_back(event);
        while self.events.len() > self.capacity {
            if let Some(e) = self.events.pop_front() {
                self.oldest = e.resource_version;
            }
        }
    }

    /// Drops every event up to and including `through`, as etcd compaction does.
    pub fn compact(&mut self, through: u64) {
        while self
            .events
            .front()
            .is_some_and(|e| e.resource_version <= through)
        {
            self.events.pop_front();
        }
        self.oldest = self.oldest.max(through);
    }

    pub fn oldest(&self) -> u64 {
        self.oldest
    }

    /// Events with a resourceVersion above `after`, in order.
    pub fn since(&self, after: u64) -> Result<impl DoubleEndedIterator<Item = &Event>, Compacted> {
        if after < self.oldest {
            return Err(Compacted {
                requested: after,
                oldest: self.oldest,
            });
        }
        let start = self.events.partition_point(|e| e.resource_version <= after);
        Ok(self.events.range(start..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(rv: u64) -> Event {
        Event {
            resource_version: rv,
            event_type: EventType::Added,
            key: ObjectKey {
                resource: "configmaps".into(),
                namespace: "default".into(),
                name: format!("c{rv}"),
            },
            object: Arc::new(Stored::new(json!({}))),
            previous: None,
        }
    }

    #[test]
    fn since_returns_later_events_in_order() {
        let mut log = EventLog::new(10, 1);
        for rv in 2..=5 {
            log.push(ev(rv));
        }
        let rvs: Vec<u64> = log.since(3).unwrap().map(|e| e.resource_version).collect();
        assert_eq!(rvs, vec![4, 5]);
        assert_eq!(log.since(1).unwrap().count(), 4);
    }

    #[test]
    fn capacity_compacts_the_oldest_and_old_revisions_are_refused() {
        let mut log = EventLog::new(2, 1);
        for rv in 2..=5 {
            log.push(ev(rv));
        }
        assert_eq!(log.oldest(), 3);
        assert_eq!(
            log.since(2).err(),
            Some(Compacted {
                requested: 2,
                oldest: 3
            })
        );
        assert_eq!(log.since(3).unwrap().count(), 2);
    }

    #[test]
    fn explicit_compaction_moves_the_floor() {
        let mut log = EventLog::new(100, 1);
        for rv in 2..=5 {
            log.push(ev(rv));
        }
        log.compact(5);
        assert!(log.since(4).is_err());
        assert_eq!(log.since(5).unwrap().count(), 0);
    }
}
