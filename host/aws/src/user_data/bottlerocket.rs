//! Bottlerocket: TOML settings. The user's TOML is kept; Dovetail's
//! `settings.kubernetes` values override it, labels are merged (Dovetail's
//! win) and `node-taints` is replaced.

use toml::{Table, Value};

use super::{Bootstrap, UserDataError};

pub(super) fn user_data(b: &Bootstrap) -> Result<String, UserDataError> {
    let mut doc: Table = match b.custom.as_deref().map(str::trim) {
        None | Some("") => Table::new(),
        Some(text) => text
            .parse()
            .map_err(|e: toml::de::Error| UserDataError::BottlerocketToml(e.to_string()))?,
    };
    let settings = table(&mut doc, "settings")?;
    let k8s = table(settings, "kubernetes")?;
    let s = |v: &str| Value::String(v.to_string());
    k8s.insert("cluster-name".into(), s(&b.cluster_name));
    k8s.insert("api-server".into(), s(&b.cluster_endpoint));
    if let Some(ca) = &b.ca_bundle {
        k8s.insert("cluster-certificate".into(), s(ca));
    }
    let kubelet = &b.kubelet;
    if let Some(dns) = kubelet.cluster_dns.first() {
        k8s.insert("cluster-dns-ip".into(), s(dns));
    }
    if let Some(n) = kubelet.max_pods {
        k8s.insert("max-pods".into(), Value::Integer(i64::from(n)));
    }
    let map = |m: &std::collections::BTreeMap<String, String>| {
        Value::Table(m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
    };
    for (key, values) in [
        ("system-reserved", &kubelet.system_reserved),
        ("kube-reserved", &kubelet.kube_reserved),
        ("eviction-hard", &kubelet.eviction_hard),
        ("eviction-soft", &kubelet.eviction_soft),
    ] {
        if !values.is_empty() {
            k8s.insert(key.into(), map(values));
        }
    }
    if !kubelet.eviction_soft_grace_period.is_empty() {
        let grace = kubelet
            .eviction_soft_grace_period
            .iter()
            .map(|(k, d)| (k.clone(), s(&d.to_string())))
            .collect();
        k8s.insert("eviction-soft-grace-period".into(), Value::Table(grace));
    }
    if let Some(n) = kubelet.eviction_max_pod_grace_period {
        k8s.insert(
            "eviction-max-pod-grace-period".into(),
            Value::Integer(i64::from(n)),
        );
    }
    if let Some(n) = kubelet.image_gc_high_threshold_percent {
        k8s.insert("image-gc-high-threshold-percent".into(), s(&n.to_string()));
    }
    if let Some(n) = kubelet.image_gc_low_threshold_percent {
        k8s.insert("image-gc-low-threshold-percent".into(), s(&n.to_string()));
    }
    if let Some(on) = kubelet.cpu_cfs_quota {
        k8s.insert("cpu-cfs-quota-enforced".into(), Value::Boolean(on));
    }
    let labels = table(k8s, "node-labels")?;
    for (k, v) in b.kubelet_labels() {
        labels.insert(k, s(&v));
    }
    let mut taints = Table::new();
    for t in b.register_taints() {
        let entry = taints
            .entry(t.key.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(s(&format!(
                "{}:{}",
                t.value.as_deref().unwrap_or(""),
                t.effect
            )));
        }
    }
    k8s.insert("node-taints".into(), Value::Table(taints));
    if b.instance_store_raid0 {
        let commands = table(settings, "bootstrap-commands")?;
        let mount = table(commands, "000-mount-instance-storage")?;
        let command = |args: &[&str]| Value::Array(args.iter().map(|a| s(a)).collect());
        mount.insert(
            "commands".into(),
            Value::Array(vec![
                command(&["apiclient", "ephemeral-storage", "init"]),
                command(&["apiclient", "ephemeral-storage", "bind"]),
            ]),
        );
        mount.insert("mode".into(), s("always"));
        mount.insert("essential".into(), Value::Boolean(true));
    }
    toml::to_string(&doc).map_err(|e| UserDataError::Encode(e.to_string()))
}

/// The table at `key`, made if missing; an error if the user's TOML has
/// something else there.
fn table<'a>(parent: &'a mut Table, key: &str) -> Result<&'a mut Table, UserDataError> {
    match parent
        .entry(key.to_string())
        .or_insert_with(|| Value::Table(Table::new()))
    {
        Value::Table(t) => Ok(t),
        other => Err(UserDataError::BottlerocketToml(format!(
            "`{key}` must be a table, not {}",
            other.type_str()
        ))),
    }
}
