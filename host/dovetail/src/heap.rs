//! Keeping the controller under its heap target (90 % of the pod's memory
//! limit, `MEMORY_LIMIT`), as Karpenter sets Go's soft memory limit: the
//! allocator is asked to hand freed memory back whenever the resident set
//! passes the target, and a policy instance may never take more than a
//! quarter of it.

use std::time::Duration;

/// How often the resident set is read.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The most linear memory one policy instance gets under `target`: a
/// quarter of it, and never more than `default`.
pub fn policy_memory_cap(target: Option<u64>, default: usize) -> usize {
    match target {
        Some(t) => usize::try_from(t / 4).unwrap_or(usize::MAX).min(default),
        None => default,
    }
}

/// The process's resident set in bytes, where the OS reports it.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    #[cfg(target_os = "linux")]
    {
        rustix::param::page_size() as u64
    }
    #[cfg(not(target_os = "linux"))]
    {
        4096
    }
}

/// Checks the resident set every few seconds and, above `target`, has the
/// allocator return what it holds freed; warns once per excursion.
pub fn spawn_watch(target: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut over = false;
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let Some(resident) = resident_bytes() else {
                continue;
            };
            if resident <= target {
                over = false;
                continue;
            }
            // SAFETY: mi_collect only walks the allocator's own free lists.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_collect(true);
            }
            let after = resident_bytes().unwrap_or(resident);
            if !over && after > target {
                tracing::warn!(
                    resident_mib = after >> 20,
                    target_mib = target >> 20,
                    "the controller's memory is above its heap target (90% of MEMORY_LIMIT); raise the pod's memory limit if this persists"
                );
            }
            over = after > target;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_instance_gets_a_quarter_of_the_target_at_most() {
        assert_eq!(policy_memory_cap(None, 1 << 30), 1 << 30);
        assert_eq!(policy_memory_cap(Some(1 << 30), 1 << 30), 1 << 28);
        assert_eq!(policy_memory_cap(Some(16 << 30), 1 << 30), 1 << 30);
    }

    #[test]
    fn the_resident_set_is_read() {
        let r = resident_bytes().expect("/proc/self/statm on Linux");
        assert!(r > 1 << 20, "{r}");
    }
}
