//! What a controller is waiting to see in its cache after its own writes,
//! so a stale cache does not make it create or delete twice (client-go's
//! controller expectations).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// How long to wait for the cache before acting again regardless.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(crate) struct Expectations {
    /// By owner uid: pods created (by name) and deleted (by uid).
    pending: HashMap<String, (HashSet<String>, HashSet<String>, Instant)>,
}

impl Expectations {
    pub fn created(&mut self, owner: &str, name: String) {
        self.entry(owner).0.insert(name);
    }

    pub fn deleted(&mut self, owner: &str, uid: String) {
        self.entry(owner).1.insert(uid);
    }

    fn entry(&mut self, owner: &str) -> &mut (HashSet<String>, HashSet<String>, Instant) {
        let e = self
            .pending
            .entry(owner.to_string())
            .or_insert_with(|| (HashSet::new(), HashSet::new(), Instant::now()));
        e.2 = Instant::now();
        e
    }

    /// Whether the cache (`pods`) shows every write made for `owner`.
    pub fn satisfied<'a>(
        &mut self,
        owner: &str,
        pods: impl Iterator<Item = &'a Pod> + Clone,
    ) -> bool {
        let Some((created, deleted, since)) = self.pending.get_mut(owner) else {
            return true;
        };
        created.retain(|name| {
            !pods
                .clone()
                .any(|p| p.metadata.name.as_deref() == Some(name))
        });
        deleted.retain(|uid| {
            pods.clone().any(|p| {
                p.metadata.uid.as_deref() == Some(uid) && p.metadata.deletion_timestamp.is_none()
            })
        });
        if (created.is_empty() && deleted.is_empty()) || since.elapsed() > TIMEOUT {
            self.pending.remove(owner);
            return true;
        }
        false
    }
}
