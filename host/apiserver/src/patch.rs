//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! Kubernetes' strategic merge patch, applied to objects held as
//! `serde_json::Value`.
//!
//! Strategic merge patch needs to know, for each list field, whether its
//! elements merge by a key, merge as a set, or replace the whole list. Real
//! servers read that from the Go struct tags (`patchStrategy`,
//! `patchMergeKey`) of the built-in types; [`list_strategy`] holds the same
//! facts for the kinds Dovetail serves. Custom resources have no such tags,
//! so a strategic patch on one is refused with 415, as upstream does.

use serde_json::{Map, Value};

/// Upstream refuses JSON patches with more operations than this
/// (apiserver `maxJSONPatchOperations`) with 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Bytes a JSON patch may add through `copy` operations in total, the
/// request body limit of upstream's API server.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// The flavour of a PATCH request, chosen by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply, handled elsewhere.
    Apply,
}

impl PatchKind {
    /// The patch kind for a request's `Content-Type` (parameters such as
    /// `; charset=utf-8` are ignored).
    pub fn from_content_type(content_type: &str) -> Result<Self, PatchError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" => Ok(Self::Apply),
            _ => Err(PatchError::UnsupportedMediaType {
                accepted: BUILT_IN_MEDIA_TYPES.join(", "),
            }),
        }
    }

    /// The `Content-Type` a client sends for this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Merge => "application/merge-patch+json",
            Self::Json => "application/json-patch+json",
            Self::Strategic => "application/strategic-merge-patch+json",
            Self::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Patch media types accepted for built-in kinds, in upstream's order.
const BUILT_IN_MEDIA_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// Patch media types accepted for custom resources (no strategic merge).
const CUSTOM_RESOURCE_MEDIA_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// What kind of object a patch applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType<'a> {
    /// A kind compiled into Kubernetes; `group` is `""` for the core group.
    BuiltIn { group: &'a str, kind: &'a str },
    /// An object served through a CustomResourceDefinition.
    CustomResource,
}

/// How the server should answer a failed patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 400 `BadRequest`.
    BadRequest,
    /// 413 `RequestEntityTooLarge`.
    RequestEntityTooLarge,
    /// 415 `UnsupportedMediaType`.
    UnsupportedMediaType,
    /// 422 `Invalid`.
    Invalid,
}

impl ErrorClass {
    /// HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::RequestEntityTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Invalid => 422,
        }
    }

    /// The `reason` of the `Status` body.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::Invalid => "Invalid",
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The body is not valid JSON.
    #[error("error decoding patch: {0}")]
    MalformedJson(String),
    /// The body is JSON but not a patch of the requested kind.
    #[error("invalid {kind} patch: {reason}")]
    MalformedPatch { kind: &'static str, reason: String },
    /// A JSON patch with more operations than the server accepts.
    #[error(
        "the allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}"
    )]
    TooManyOperations(usize),
    /// A JSON patch operation (including a failed `test`) could not apply.
    #[error("the server rejected our request due to an error in our request: {0}")]
    OperationFailed(String),
    /// A strategic directive (`$patch`, `$retainKeys`, ...) is malformed.
    #[error("{0}")]
    BadDirective(String),
    /// A strategic patch element lacks its list's merge key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey { element: String, key: &'static str },
    /// Keys in a patch outside its own `$retainKeys` list.
    #[error("patch content doesn't match retainKeys list: {0}")]
    RetainKeysMismatch(String),
    /// The content type is not a patch media type this object accepts.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    )]
    UnsupportedMediaType { accepted: String },
    /// Server-side apply is a different code path from the patches here.
    #[error("server-side apply (application/apply-patch+yaml) is not handled by the patch module")]
    ApplyNotSupportedHere,
}

impl PatchError {
    /// How the server answers this error, as upstream does.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::MalformedJson(_)
            | Self::MalformedPatch { .. }
            | Self::BadDirective(_)
            | Self::MissingMergeKey { .. }
            | Self::ApplyNotSupportedHere => ErrorClass::BadRequest,
            Self::TooManyOperations(_) => ErrorClass::RequestEntityTooLarge,
            Self::OperationFailed(_) | Self::RetainKeysMismatch(_) => ErrorClass::Invalid,
            Self::UnsupportedMediaType { .. } => ErrorClass::UnsupportedMediaType,
        }
    }
}

/// Applies `patch` (the raw request body) of the given kind to `target` and
/// returns the patched object; `target` is left untouched.
pub fn apply(
    kind: PatchKind,
    target: &Value,
    patch: &[u8],
    object: ObjectType<'_>,
) -> Result<Value, PatchError> {
    match kind {
        PatchKind::Merge => merge_patch(target, patch),
        PatchKind::Json => json_patch(target, patch),
        PatchKind::Strategic => match object {
            ObjectType::BuiltIn { group, kind } => {
                strategic_merge_patch(target, patch, group, kind)
            }
            ObjectType::CustomResource => Err(PatchError::UnsupportedMediaType {
                accepted: CUSTOM_RESOURCE_MEDIA_TYPES.join(", "),
            }),
        },
        PatchKind::Apply => Err(PatchError::ApplyNotSupportedHere),
    }
}

fn parse_body(patch: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(patch).map_err(|e| PatchError::MalformedJson(e.to_string()))
}

/// RFC 7386 JSON merge patch. The body must be a JSON object, since the
/// result has to be an object again.
pub fn merge_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch = parse_body(patch)?;
    if !patch.is_object() {
        return Err(PatchError::MalformedPatch {
            kind: "merge",
            reason: format!("expected a JSON object, got {}", type_name(&patch)),
        });
    }
    let mut doc = target.clone();
    json_patch::merge(&mut doc, &patch);
    Ok(doc)
}

/// RFC 6902 JSON patch, with Kubernetes' reading of `test`: a missing path
/// tests equal to `null` (kube-rs' finalizer helper relies on it).
pub fn json_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let body = parse_body(patch)?;
    let Some(ops) = body.as_array() else {
        return Err(PatchError::MalformedPatch {
            kind: "JSON",
            reason: format!(
                "expected a JSON array of operations, got {}",
                type_name(&body)
            ),
        });
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.len()));
    }
    let ops: Vec<json_patch::PatchOperation> =
        serde_json::from_value(body).map_err(|e| PatchError::MalformedPatch {
            kind: "JSON",
            reason: e.to_string(),
        })?;
    let mut doc = target.clone();
    let mut copied = 0usize;
    for (index, op) in ops.iter().enumerate() {
        // `copy` can double the document per operation; bound the growth as
        // upstream's JSON patch library does, instead of exhausting memory.
        if let json_patch::PatchOperation::Copy(copy) = op
            && let Ok(source) = copy.from.resolve(&doc)
        {
            copied = copied.saturating_add(serde_json::to_vec(source).map_or(0, |v| v.len()));
            if copied > MAX_JSON_PATCH_COPY_BYTES {
                return Err(PatchError::OperationFailed(format!(
                    "operation {index} (copy): the accumulated size increase of copy is {copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
                )));
            }
        }
        if let json_patch::PatchOperation::Test(test) = op
            && test.value.is_null()
            && test.path.resolve(&doc).is_err()
        {
            continue;
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            PatchError::OperationFailed(format!(
                "operation {index} ({}) failed at path '{}': {}",
                op_name(op),
                op.path(),
                e.kind
            ))
        })?;
    }
    Ok(doc)
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as Op;
    match op {
        Op::Add(_) => "add",
        Op::Remove(_) => "remove",
        Op::Replace(_) => "replace",
        Op::Move(_) => "move",
        Op::Copy(_) => "copy",
        Op::Test(_) => "test",
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How a strategic merge patch treats one list field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No `patchStrategy`: the patch's list replaces the object's.
    Replace,
    /// `patchStrategy:"merge"` on a list of scalars: set union.
    MergeScalars,
    /// `patchStrategy:"merge"` with `patchMergeKey`: elements merge by key.
    MergeByKey(&'static str),
}

/// Keyed lists of `PodSpec`, as paths relative to the pod spec (list
/// elements add no path segment).
const POD_SPEC_LISTS: &[(&str, &str)] = &[
    ("containers", "name"),
    ("initContainers", "name"),
    ("ephemeralContainers", "name"),
    ("volumes", "name"),
    ("imagePullSecrets", "name"),
    ("hostAliases", "ip"),
    ("topologySpreadConstraints", "topologyKey"),
    ("resourceClaims", "name"),
    ("schedulingGates", "name"),
];

/// Keyed lists inside a `Container` (and `EphemeralContainer`).
const CONTAINER_LISTS: &[(&str, &str)] = &[
    ("ports", "containerPort"),
    ("env", "name"),
    ("volumeMounts", "mountPath"),
    ("volumeDevices", "devicePath"),
];

/// Keyed lists of `PodStatus`, relative to `status`.
const POD_STATUS_LISTS: &[(&str, &str)] = &[
    ("conditions", "type"),
    ("podIPs", "ip"),
    ("hostIPs", "ip"),
    ("resourceClaimStatuses", "name"),
];

/// Where each built-in kind keeps its pod spec, if it has one.
fn pod_spec_prefix(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "Pod") => Some("spec"),
        ("", "PodTemplate") => Some("template.spec"),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet")
        | ("batch", "Job") => Some("spec.template.spec"),
        ("batch", "CronJob") => Some("spec.jobTemplate.spec.template.spec"),
        _ => None,
    }
}

/// Object metadata of pod templates, which merges like top-level metadata.
fn template_metadata_prefix(group: &str, kind: &str) -> Option<&'static str> {
    pod_spec_prefix(group, kind)
        .and_then(|spec| spec.strip_suffix(".spec"))
        .map(|template| match template {
            "template" => "template.metadata",
            "spec.template" => "spec.template.metadata",
            _ => "spec.jobTemplate.spec.template.metadata",
        })
}

/// The strategic merge strategy of the list at `path` (dot-separated field
/// names, list elements adding no segment) in an object of the built-in
/// `group`/`kind`, from the `patchStrategy`/`patchMergeKey` tags of
/// k8s.io/api.
pub fn list_strategy(group: &str, kind: &str, path: &str) -> ListStrategy {
    if let Some(strategy) = metadata_list(path) {
        return strategy;
    }
    if let Some(meta) = template_metadata_prefix(group, kind)
        && let Some(rest) = strip_segments(path, meta)
        && let Some(strategy) = metadata_list(&format!("metadata.{rest}"))
    {
        return strategy;
    }
    if let Some(spec) = pod_spec_prefix(group, kind)
        && let Some(rest) = strip_segments(path, spec)
    {
        return pod_spec_list(rest);
    }
    let key = match (group, kind, path) {
        ("", "Pod", rest) => {
            return strip_segments(rest, "status")
                .and_then(|rest| lookup(POD_STATUS_LISTS, rest))
                .map_or(ListStrategy::Replace, ListStrategy::MergeByKey);
        }
        ("", "Node", "spec.podCIDRs") => return ListStrategy::MergeScalars,
        ("", "Node", "status.conditions" | "status.addresses") => "type",
        ("", "Service", "spec.ports") => "port",
        ("", "Service" | "Namespace", "status.conditions") => "type",
        (
            "apps",
            "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet",
            "status.conditions",
        ) => "type",
        ("policy", "PodDisruptionBudget", "status.conditions") => "type",
        ("batch", "Job", "status.conditions") => "type",
        ("", "ReplicationController", "status.conditions") => "type",
        _ => return ListStrategy::Replace,
    };
    ListStrategy::MergeByKey(key)
}

fn metadata_list(path: &str) -> Option<ListStrategy> {
    match path {
        "metadata.finalizers" => Some(ListStrategy::MergeScalars),
        "metadata.ownerReferences" => Some(ListStrategy::MergeByKey("uid")),
        _ => None,
    }
}

fn pod_spec_list(rest: &str) -> ListStrategy {
    if let Some(key) = lookup(POD_SPEC_LISTS, rest) {
        return ListStrategy::MergeByKey(key);
    }
    for container_list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(field) = strip_segments(rest, container_list)
            && let Some(key) = lookup(CONTAINER_LISTS, field)
        {
            return ListStrategy::MergeByKey(key);
        }
    }
    ListStrategy::Replace
}

fn lookup(table: &[(&str, &'static str)], path: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(field, _)| *field == path)
        .map(|(_, key)| *key)
}

/// `path` below `prefix`, if `prefix` is a whole-segment prefix of it.
fn strip_segments<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix)?.strip_prefix('.')
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Strategic merge patch of a built-in kind.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &[u8],
    group: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let patch = parse_body(patch)?;
    let Value::Object(patch) = patch else {
        return Err(PatchError::MalformedPatch {
            kind: "strategic merge",
            reason: format!("expected a JSON object, got {}", type_name(&patch)),
        });
    };
    let schema = Schema { group, kind };
    let original = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    match merge_map(original, &patch, &schema, "")? {
        Some(map) => Ok(Value::Object(map)),
        // `$patch: delete` at the top empties the object; the server then
        // fails validation on the missing apiVersion/kind/name.
        None => Ok(Value::Object(Map::new())),
    }
}

struct Schema<'a> {
    group: &'a str,
    kind: &'a str,
}

impl Schema<'_> {
    fn list(&self, path: &str) -> ListStrategy {
        list_strategy(self.group, self.kind, path)
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Merges `patch` into `original`; `None` means `$patch: delete` removed
/// the whole map.
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: &Schema<'_>,
    path: &str,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get(DIRECTIVE) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => {
            // The patch, stripped of directives, becomes the map.
            return merge_map(Map::new(), &without_directive(patch), schema, path);
        }
        Some(other) => {
            return Err(PatchError::BadDirective(format!(
                "Unknown patch type: {other} in map at '{}'",
                display_path(path)
            )));
        }
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let retain = string_list(retain, RETAIN_KEYS, path)?;
        for key in patch.keys() {
            if !key.starts_with('$') && !patch[key].is_null() && !retain.contains(&key.as_str()) {
                return Err(PatchError::RetainKeysMismatch(format!(
                    "key '{key}' at '{}' is not in $retainKeys {retain:?}",
                    display_path(path)
                )));
            }
        }
        original.retain(|key, _| retain.contains(&key.as_str()));
    }

    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
            // Applied after the field merges, below.
            if !value.is_array() {
                return Err(PatchError::BadDirective(format!(
                    "invalid patch: {SET_ELEMENT_ORDER}{field} at '{}' must be a list",
                    display_path(path)
                )));
            }
            continue;
        }
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(remove) = value else {
                return Err(PatchError::BadDirective(format!(
                    "invalid patch: {DELETE_FROM_PRIMITIVE_LIST}{field} at '{}' must be a list",
                    display_path(path)
                )));
            };
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') && key != DIRECTIVE && key != RETAIN_KEYS {
            return Err(PatchError::BadDirective(format!(
                "unknown strategic merge patch directive '{key}' at '{}'",
                display_path(path)
            )));
        }
    }

    // Fields after directives, so a deletion from a primitive list and an
    // addition to it in one patch give the same result in any key order.
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        let field_path = join(path, key);
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let current = original.remove(key);
        let before = match (&current, patch.get(&format!("{SET_ELEMENT_ORDER}{key}"))) {
            (Some(Value::Array(items)), Some(_)) => items.clone(),
            _ => Vec::new(),
        };
        if let Some(mut merged) = merge_value(current, value, schema, &field_path)? {
            if let (Value::Array(items), Some(Value::Array(order))) =
                (&mut merged, patch.get(&format!("{SET_ELEMENT_ORDER}{key}")))
            {
                apply_element_order(
                    items,
                    &before,
                    order,
                    Identity::of_list(schema, &field_path),
                );
            }
            original.insert(key.clone(), merged);
        }
    }

    // An order for a list the patch leaves alone still reorders it.
    for (key, order) in patch {
        let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        if patch.contains_key(field) {
            continue;
        }
        if let (Some(Value::Array(items)), Value::Array(order)) = (original.get_mut(field), order) {
            let before = items.clone();
            let identity = Identity::of_list(schema, &join(path, field));
            apply_element_order(items, &before, order, identity);
        }
    }
    Ok(Some(original))
}

/// How elements of a merged list are told apart for `$setElementOrder`.
#[derive(Clone, Copy)]
enum Identity {
    Key(&'static str),
    Value,
    /// A replaced list is already in the patch's order.
    None,
}

impl Identity {
    fn of_list(schema: &Schema<'_>, path: &str) -> Self {
        match schema.list(path) {
            ListStrategy::MergeByKey(key) => Identity::Key(key),
            ListStrategy::MergeScalars => Identity::Value,
            ListStrategy::Replace => Identity::None,
        }
    }

    fn of(self, element: &Value) -> Option<&Value> {
        match self {
            Identity::Key(key) => element.get(key),
            Identity::Value => Some(element),
            Identity::None => None,
        }
    }
}

/// Reorders a merged list as upstream's `normalizeElementOrder`: elements
/// named in `order` take that order, the others (only on the server) keep
/// their original places relative to them.
fn apply_element_order(items: &mut Vec<Value>, original: &[Value], order: &[Value], id: Identity) {
    if matches!(id, Identity::None) {
        return;
    }
    let order_ids: Vec<&Value> = order.iter().filter_map(|o| id.of(o)).collect();
    let position = |list: &[&Value], element: &Value| {
        id.of(element)
            .and_then(|wanted| list.iter().position(|have| *have == wanted))
    };
    let original_ids: Vec<&Value> = original.iter().filter_map(|o| id.of(o)).collect();
    let (mut ordered, mut server_only): (Vec<Value>, Vec<Value>) = std::mem::take(items)
        .into_iter()
        .partition(|element| position(&order_ids, element).is_some());
    ordered.sort_by_key(|element| position(&order_ids, element));
    server_only.sort_by_key(|element| position(&original_ids, element).unwrap_or(usize::MAX));

    let mut ordered = ordered.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let take_server = match (server_only.peek(), ordered.peek()) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
            (Some(left), Some(right)) => matches!(
                (position(&original_ids, left), position(&original_ids, right)),
                (Some(l), Some(r)) if l < r
            ),
        };
        let next = if take_server {
            server_only.next()
        } else {
            ordered.next()
        };
        items.extend(next);
    }
}

fn merge_value(
    current: Option<Value>,
    patch: &Value,
    schema: &Schema<'_>,
    path: &str,
) -> Result<Option<Value>, PatchError> {
    match patch {
        Value::Object(patch_map) => {
            let base = match current {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            Ok(merge_map(base, patch_map, schema, path)?.map(Value::Object))
        }
        Value::Array(patch_items) => {
            let base = match current {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            merge_list(base, patch_items, schema, path).map(|list| Some(Value::Array(list)))
        }
        scalar => Ok(Some(scalar.clone())),
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    schema: &Schema<'_>,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    // `{"$patch": "replace"}` as an element replaces the whole list with the
    // patch's other elements, whatever the list's strategy.
    let mut replace = false;
    for item in patch {
        if let Some(directive) = item.get(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => replace = true,
                Some("delete") => {}
                Some("merge") => {
                    return Err(PatchError::BadDirective(format!(
                        "merging lists cannot yet be specified in the patch (at '{}')",
                        display_path(path)
                    )));
                }
                _ => {
                    return Err(PatchError::BadDirective(format!(
                        "Unknown patch type: {directive} in list at '{}'",
                        display_path(path)
                    )));
                }
            }
        }
    }
    if replace {
        let mut out = Vec::new();
        for item in patch {
            if item.get(DIRECTIVE).and_then(Value::as_str) == Some("replace") {
                continue;
            }
            if let Some(merged) = merge_value(None, item, schema, path)? {
                out.push(merged);
            }
        }
        return Ok(out);
    }

    match schema.list(path) {
        ListStrategy::Replace => {
            let mut out = Vec::with_capacity(patch.len());
            for item in patch {
                if let Some(merged) = merge_value(None, item, schema, path)? {
                    out.push(merged);
                }
            }
            Ok(out)
        }
        ListStrategy::MergeScalars => {
            let mut out = original;
            for item in patch {
                if item.is_object() || item.is_array() {
                    return Err(PatchError::BadDirective(format!(
                        "invalid patch: '{}' is a list of scalars, got element {item}",
                        display_path(path)
                    )));
                }
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(out)
        }
        ListStrategy::MergeByKey(key) => merge_keyed_list(original, patch, key, schema, path),
    }
}

fn merge_keyed_list(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &'static str,
    schema: &Schema<'_>,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(element) = item else {
            return Err(PatchError::BadDirective(format!(
                "invalid patch: '{}' merges by '{key}', got element {item} that is not an object",
                display_path(path)
            )));
        };
        let Some(wanted) = element.get(key) else {
            return Err(PatchError::MissingMergeKey {
                element: item.to_string(),
                key,
            });
        };
        let position = original.iter().position(|o| o.get(key) == Some(wanted));
        if element.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
            original.retain(|o| o.get(key) != Some(wanted));
            continue;
        }
        match position {
            Some(index) => {
                let base = match std::mem::take(&mut original[index]) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                match merge_map(base, element, schema, path)? {
                    Some(merged) => original[index] = Value::Object(merged),
                    None => {
                        original.remove(index);
                    }
                }
            }
            None => {
                if let Some(merged) = merge_map(Map::new(), element, schema, path)? {
                    original.push(Value::Object(merged));
                }
            }
        }
    }
    Ok(original)
}

fn without_directive(patch: &Map<String, Value>) -> Map<String, Value> {
    patch
        .iter()
        .filter(|(k, _)| k.as_str() != DIRECTIVE)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn string_list<'v>(value: &'v Value, name: &str, path: &str) -> Result<Vec<&'v str>, PatchError> {
    let bad = || {
        PatchError::BadDirective(format!(
            "invalid patch: {name} at '{}' must be a list of strings, got {value}",
            display_path(path)
        ))
    };
    value
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_str().ok_or_else(bad))
        .collect()
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
