//! Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded into the
//! JSON form the store keeps.
//!
//! Typed kubectl commands (`create configmap`, `create secret generic`, `create namespace`,
//! `create deployment`, …) send protobuf. A body is the magic `k8s\0` followed by a
//! `runtime.Unknown` whose `raw` field holds the object. Objects are decoded with a schema of the
//! upstream field numbers (k8s.io/api and apimachinery `generated.proto`) for the kinds listed in
//! [`SUPPORTED_KINDS`]. A field the schema does not know is refused rather than dropped, so a
//! body is never stored with less than the client sent.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The magic prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Kinds whose protobuf encoding is understood, as (apiVersion, kind).
pub const SUPPORTED_KINDS: [(&str, &str); 12] = [
    ("v1", "Pod"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "Eviction"),
    ("v1", "DeleteOptions"),
    ("meta.k8s.io/v1", "DeleteOptions"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
];

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// Not well-formed protobuf, or not the Kubernetes envelope.
    #[error("the protobuf body is malformed: {0}")]
    Malformed(String),
    /// Well-formed, but a kind this server cannot decode from protobuf.
    #[error(
        "this server decodes protobuf bodies only for {supported}; {what} is not among them: send it as JSON instead (e.g. `kubectl create … --dry-run=client -o json | kubectl create -f -`)"
    )]
    UnsupportedKind { what: String, supported: String },
    /// A supported kind carrying a field this server's schema does not know.
    #[error(
        "field number {number} of protobuf message {message} is not known to this server, so the object cannot be decoded without losing it: send it as JSON instead (e.g. `kubectl create … --dry-run=client -o json | kubectl create -f -`)"
    )]
    UnknownField { message: &'static str, number: u32 },
}

fn supported_list() -> String {
    SUPPORTED_KINDS
        .iter()
        .map(|(v, k)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Scalar and message types of the schema.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    Msg(&'static Message),
    /// `map<string, V>`: entries are messages with key 1 and value 2.
    Map(&'static Ty),
    /// apimachinery `Time` {seconds 1, nanos 2} as RFC 3339.
    Time,
    /// apimachinery `IntOrString` {type 1, intVal 2, strVal 3}.
    IntOrString,
    /// `resource.Quantity` {string 1} as its string.
    Quantity,
}

/// Whether a zero scalar means "absent" (Go value fields, always written and `omitempty` in JSON)
/// or a real value (Go pointer fields, written only when set).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Zero {
    Omit,
    Keep,
}

struct Field {
    number: u32,
    name: &'static str,
    ty: Ty,
    repeated: bool,
    zero: Zero,
}

struct Message {
    name: &'static str,
    fields: &'static [Field],
}

const fn f(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        repeated: false,
        zero: Zero::Omit,
    }
}

/// A pointer field: present means set, even to zero.
const fn p(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        repeated: false,
        zero: Zero::Keep,
    }
}

const fn r(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        repeated: true,
        zero: Zero::Keep,
    }
}

const STR: Ty = Ty::Str;
const BYTES: Ty = Ty::Bytes;
const QUANTITY: Ty = Ty::Quantity;

static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", STR),
        f(3, "name", STR),
        f(4, "uid", STR),
        f(5, "apiVersion", STR),
        p(6, "controller", Ty::Bool),
        p(7, "blockOwnerDeletion", Ty::Bool),
    ],
};

static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", STR),
        f(2, "generateName", STR),
        f(3, "namespace", STR),
        f(4, "selfLink", STR),
        f(5, "uid", STR),
        f(6, "resourceVersion", STR),
        f(7, "generation", Ty::I64),
        f(8, "creationTimestamp", Ty::Time),
        p(9, "deletionTimestamp", Ty::Time),
        p(10, "deletionGracePeriodSeconds", Ty::I64),
        f(11, "labels", Ty::Map(&STR)),
        f(12, "annotations", Ty::Map(&STR)),
        r(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE)),
        r(14, "finalizers", STR),
    ],
};

static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::Map(&STR)),
        f(3, "binaryData", Ty::Map(&BYTES)),
        p(4, "immutable", Ty::Bool),
    ],
};

static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::Map(&BYTES)),
        f(3, "type", STR),
        f(4, "stringData", Ty::Map(&STR)),
        p(5, "immutable", Ty::Bool),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[r(1, "finalizers", STR)],
};

static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[f(1, "phase", STR)],
};

static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Ty::Msg(&NAMESPACE_STATUS)),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        f(1, "kind", STR),
        f(2, "namespace", STR),
        f(3, "name", STR),
        f(4, "uid", STR),
        f(5, "apiVersion", STR),
        f(6, "resourceVersion", STR),
        f(7, "fieldPath", STR),
    ],
};

static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[f(1, "name", STR)],
};

static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        r(2, "secrets", Ty::Msg(&OBJECT_REFERENCE)),
        r(3, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        p(4, "automountServiceAccountToken", Ty::Bool),
    ],
};

static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[f(1, "key", STR), f(2, "operator", STR), r(3, "values", STR)],
};

static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        f(1, "matchLabels", Ty::Map(&STR)),
        r(2, "matchExpressions", Ty::Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", STR),
        f(2, "hostPort", Ty::I32),
        f(3, "containerPort", Ty::I32),
        f(4, "protocol", STR),
        f(5, "hostIP", STR),
    ],
};

static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[f(1, "name", STR), f(2, "value", STR)],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        f(1, "limits", Ty::Map(&QUANTITY)),
        f(2, "requests", Ty::Map(&QUANTITY)),
    ],
};

static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", STR),
        f(2, "image", STR),
        r(3, "command", STR),
        r(4, "args", STR),
        f(5, "workingDir", STR),
        r(6, "ports", Ty::Msg(&CONTAINER_PORT)),
        r(7, "env", Ty::Msg(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        f(13, "terminationMessagePath", STR),
        f(14, "imagePullPolicy", STR),
        f(16, "stdin", Ty::Bool),
        f(17, "stdinOnce", Ty::Bool),
        f(18, "tty", Ty::Bool),
        f(20, "terminationMessagePolicy", STR),
    ],
};

static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        f(1, "key", STR),
        f(2, "operator", STR),
        f(3, "value", STR),
        f(4, "effect", STR),
        p(5, "tolerationSeconds", Ty::I64),
    ],
};

/// Only the empty form kubectl sends (`securityContext: {}`); any field is refused.
static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[],
};

static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        r(2, "containers", Ty::Msg(&CONTAINER)),
        f(3, "restartPolicy", STR),
        p(4, "terminationGracePeriodSeconds", Ty::I64),
        p(5, "activeDeadlineSeconds", Ty::I64),
        f(6, "dnsPolicy", STR),
        f(7, "nodeSelector", Ty::Map(&STR)),
        f(8, "serviceAccountName", STR),
        f(9, "serviceAccount", STR),
        f(10, "nodeName", STR),
        f(11, "hostNetwork", Ty::Bool),
        f(12, "hostPID", Ty::Bool),
        f(13, "hostIPC", Ty::Bool),
        p(14, "securityContext", Ty::Msg(&POD_SECURITY_CONTEXT)),
        r(15, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", STR),
        f(17, "subdomain", STR),
        f(19, "schedulerName", STR),
        r(20, "initContainers", Ty::Msg(&CONTAINER)),
        p(21, "automountServiceAccountToken", Ty::Bool),
        r(22, "tolerations", Ty::Msg(&TOLERATION)),
        f(24, "priorityClassName", STR),
        p(25, "priority", Ty::I32),
        p(27, "shareProcessNamespace", Ty::Bool),
        f(29, "runtimeClassName", STR),
        p(30, "enableServiceLinks", Ty::Bool),
        p(31, "preemptionPolicy", STR),
    ],
};

static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
    ],
};

/// The scalar part of a pod's status: what `kubectl run` sends is empty, and status is
/// replaced on create anyway; lists (conditions, container statuses) are refused.
static POD_STATUS: Message = Message {
    name: "PodStatus",
    fields: &[
        f(1, "phase", STR),
        f(3, "message", STR),
        f(4, "reason", STR),
        f(5, "hostIP", STR),
        f(6, "podIP", STR),
        p(7, "startTime", Ty::Time),
        f(9, "qosClass", STR),
        f(11, "nominatedNodeName", STR),
        f(14, "resize", STR),
        f(17, "observedGeneration", Ty::I64),
    ],
};

static POD: Message = Message {
    name: "Pod",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
        f(3, "status", Ty::Msg(&POD_STATUS)),
    ],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        p(1, "maxUnavailable", Ty::IntOrString),
        p(2, "maxSurge", Ty::IntOrString),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        f(1, "type", STR),
        p(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        p(1, "replicas", Ty::I32),
        p(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Ty::Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Ty::I32),
        p(6, "revisionHistoryLimit", Ty::I32),
        f(7, "paused", Ty::Bool),
        p(9, "progressDeadlineSeconds", Ty::I32),
    ],
};

static DEPLOYMENT_CONDITION: Message = Message {
    name: "DeploymentCondition",
    fields: &[
        f(1, "type", STR),
        f(2, "status", STR),
        f(4, "reason", STR),
        f(5, "message", STR),
        f(6, "lastUpdateTime", Ty::Time),
        f(7, "lastTransitionTime", Ty::Time),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        f(1, "observedGeneration", Ty::I64),
        f(2, "replicas", Ty::I32),
        f(3, "updatedReplicas", Ty::I32),
        f(4, "availableReplicas", Ty::I32),
        f(5, "unavailableReplicas", Ty::I32),
        r(6, "conditions", Ty::Msg(&DEPLOYMENT_CONDITION)),
        f(7, "readyReplicas", Ty::I32),
        p(8, "collisionCount", Ty::I32),
        p(9, "terminatingReplicas", Ty::I32),
    ],
};

static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Msg(&DEPLOYMENT_STATUS)),
    ],
};

static PRECONDITIONS: Message = Message {
    name: "Preconditions",
    fields: &[p(1, "uid", STR), p(2, "resourceVersion", STR)],
};

static DELETE_OPTIONS: Message = Message {
    name: "DeleteOptions",
    fields: &[
        p(1, "gracePeriodSeconds", Ty::I64),
        p(2, "preconditions", Ty::Msg(&PRECONDITIONS)),
        p(3, "orphanDependents", Ty::Bool),
        p(4, "propagationPolicy", STR),
        r(5, "dryRun", STR),
    ],
};

static EVICTION: Message = Message {
    name: "Eviction",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        p(2, "deleteOptions", Ty::Msg(&DELETE_OPTIONS)),
    ],
};

static RESOURCE_ATTRIBUTES: Message = Message {
    name: "ResourceAttributes",
    fields: &[
        f(1, "namespace", STR),
        f(2, "verb", STR),
        f(3, "group", STR),
        f(4, "version", STR),
        f(5, "resource", STR),
        f(6, "subresource", STR),
        f(7, "name", STR),
    ],
};

static NON_RESOURCE_ATTRIBUTES: Message = Message {
    name: "NonResourceAttributes",
    fields: &[f(1, "path", STR), f(2, "verb", STR)],
};

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        p(1, "resourceAttributes", Ty::Msg(&RESOURCE_ATTRIBUTES)),
        p(
            2,
            "nonResourceAttributes",
            Ty::Msg(&NON_RESOURCE_ATTRIBUTES),
        ),
    ],
};

static SUBJECT_ACCESS_REVIEW_STATUS: Message = Message {
    name: "SubjectAccessReviewStatus",
    fields: &[
        f(1, "allowed", Ty::Bool),
        f(2, "reason", STR),
        f(3, "evaluationError", STR),
        f(4, "denied", Ty::Bool),
    ],
};

static SELF_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SelfSubjectAccessReview",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        f(3, "status", Ty::Msg(&SUBJECT_ACCESS_REVIEW_STATUS)),
    ],
};

static RESOURCE_RULE: Message = Message {
    name: "ResourceRule",
    fields: &[
        r(1, "verbs", STR),
        r(2, "apiGroups", STR),
        r(3, "resources", STR),
        r(4, "resourceNames", STR),
    ],
};

static NON_RESOURCE_RULE: Message = Message {
    name: "NonResourceRule",
    fields: &[r(1, "verbs", STR), r(2, "nonResourceURLs", STR)],
};

static SUBJECT_RULES_REVIEW_STATUS: Message = Message {
    name: "SubjectRulesReviewStatus",
    fields: &[
        r(1, "resourceRules", Ty::Msg(&RESOURCE_RULE)),
        r(2, "nonResourceRules", Ty::Msg(&NON_RESOURCE_RULE)),
        f(3, "incomplete", Ty::Bool),
        f(4, "evaluationError", STR),
    ],
};

static SELF_SUBJECT_RULES_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectRulesReviewSpec",
    fields: &[f(1, "namespace", STR)],
};

static SELF_SUBJECT_RULES_REVIEW: Message = Message {
    name: "SelfSubjectRulesReview",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)),
        f(3, "status", Ty::Msg(&SUBJECT_RULES_REVIEW_STATUS)),
    ],
};

static USER_INFO: Message = Message {
    name: "UserInfo",
    fields: &[f(1, "username", STR), f(2, "uid", STR), r(3, "groups", STR)],
};

static SELF_SUBJECT_REVIEW_STATUS: Message = Message {
    name: "SelfSubjectReviewStatus",
    fields: &[p(1, "userInfo", Ty::Msg(&USER_INFO))],
};

static SELF_SUBJECT_REVIEW: Message = Message {
    name: "SelfSubjectReview",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "status", Ty::Msg(&SELF_SUBJECT_REVIEW_STATUS)),
    ],
};

fn schema(api_version: &str, kind: &str) -> Option<&'static Message> {
    match (api_version, kind) {
        ("v1", "Pod") => Some(&POD),
        ("v1", "ConfigMap") => Some(&CONFIG_MAP),
        ("v1", "Secret") => Some(&SECRET),
        ("v1", "Namespace") => Some(&NAMESPACE),
        ("v1", "ServiceAccount") => Some(&SERVICE_ACCOUNT),
        ("apps/v1", "Deployment") => Some(&DEPLOYMENT),
        ("policy/v1", "Eviction") => Some(&EVICTION),
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => Some(&DELETE_OPTIONS),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => Some(&SELF_SUBJECT_ACCESS_REVIEW),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => Some(&SELF_SUBJECT_RULES_REVIEW),
        ("authentication.k8s.io/v1", "SelfSubjectReview") => Some(&SELF_SUBJECT_REVIEW),
        _ => None,
    }
}

/// One field as it appears on the wire.
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
}

fn malformed(what: &str) -> ProtobufError {
    ProtobufError::Malformed(what.to_string())
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| malformed("a varint runs past the end"))?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint is longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if n > self.buf.len() {
            return Err(malformed("a length-delimited field runs past the end"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| malformed("field number too large"))?;
        if number == 0 {
            return Err(malformed("field number 0"));
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| malformed("length too large"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            t => return Err(ProtobufError::Malformed(format!("wire type {t}"))),
        };
        Ok(Some((number, wire)))
    }
}

fn bytes_of<'a>(wire: Wire<'a>, what: &str) -> Result<&'a [u8], ProtobufError> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        _ => Err(ProtobufError::Malformed(format!(
            "{what} is not length-delimited"
        ))),
    }
}

fn varint_of(wire: Wire<'_>, what: &str) -> Result<u64, ProtobufError> {
    match wire {
        Wire::Varint(v) => Ok(v),
        _ => Err(ProtobufError::Malformed(format!("{what} is not a varint"))),
    }
}

fn utf8(b: &[u8], what: &str) -> Result<String, ProtobufError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| ProtobufError::Malformed(format!("{what} is not UTF-8")))
}

/// Decodes one value of a non-repeated type; `None` is a zero value of a value field.
fn value(ty: Ty, wire: Wire<'_>, what: &str) -> Result<Value, ProtobufError> {
    Ok(match ty {
        Ty::Str => json!(utf8(bytes_of(wire, what)?, what)?),
        Ty::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(bytes_of(wire, what)?)),
        Ty::Bool => json!(varint_of(wire, what)? != 0),
        // Two's complement on the wire: negative int32s are sign-extended to 64 bits.
        Ty::I32 => json!(varint_of(wire, what)? as i64 as i32),
        Ty::I64 => json!(varint_of(wire, what)? as i64),
        Ty::Msg(m) => Value::Object(message(m, bytes_of(wire, what)?)?),
        Ty::Map(_) => unreachable!("maps are decoded entry by entry"),
        Ty::Time => {
            let mut r = Reader {
                buf: bytes_of(wire, what)?,
            };
            let mut seconds = 0i64;
            while let Some((n, w)) = r.next()? {
                match n {
                    1 => seconds = varint_of(w, what)? as i64,
                    2 => {}
                    number => {
                        return Err(ProtobufError::UnknownField {
                            message: "Time",
                            number,
                        });
                    }
                }
            }
            if seconds == 0 {
                Value::Null
            } else {
                chrono::DateTime::from_timestamp(seconds, 0)
                    .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
                    .ok_or_else(|| malformed("a time is out of range"))?
            }
        }
        Ty::IntOrString => {
            let mut r = Reader {
                buf: bytes_of(wire, what)?,
            };
            let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
            while let Some((n, w)) = r.next()? {
                match n {
                    1 => is_string = varint_of(w, what)? == 1,
                    2 => int = i64::from(varint_of(w, what)? as i64 as i32),
                    3 => string = utf8(bytes_of(w, what)?, what)?,
                    number => {
                        return Err(ProtobufError::UnknownField {
                            message: "IntOrString",
                            number,
                        });
                    }
                }
            }
            if is_string { json!(string) } else { json!(int) }
        }
        Ty::Quantity => {
            let mut r = Reader {
                buf: bytes_of(wire, what)?,
            };
            let mut s = String::new();
            while let Some((n, w)) = r.next()? {
                match n {
                    1 => s = utf8(bytes_of(w, what)?, what)?,
                    number => {
                        return Err(ProtobufError::UnknownField {
                            message: "Quantity",
                            number,
                        });
                    }
                }
            }
            json!(s)
        }
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn message(m: &'static Message, buf: &[u8]) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut r = Reader { buf };
    while let Some((number, wire)) = r.next()? {
        let field =
            m.fields
                .iter()
                .find(|f| f.number == number)
                .ok_or(ProtobufError::UnknownField {
                    message: m.name,
                    number,
                })?;
        let what = format!("{}.{}", m.name, field.name);
        if let Ty::Map(value_ty) = field.ty {
            let mut entry = Reader {
                buf: bytes_of(wire, &what)?,
            };
            let (mut key, mut val) = (String::new(), None);
            while let Some((n, w)) = entry.next()? {
                match n {
                    1 => key = utf8(bytes_of(w, &what)?, &what)?,
                    2 => val = Some(value(*value_ty, w, &what)?),
                    _ => return Err(malformed("a map entry has a field other than 1 or 2")),
                }
            }
            let val = val.unwrap_or_else(|| match value_ty {
                Ty::Str | Ty::Bytes | Ty::Quantity => json!(""),
                _ => Value::Null,
            });
            let map = out
                .entry(field.name)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(map) = map.as_object_mut() {
                map.insert(key, val);
            }
            continue;
        }
        let v = value(field.ty, wire, &what)?;
        if field.repeated {
            let list = out
                .entry(field.name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = list.as_array_mut() {
                list.push(v);
            }
        } else if field.zero == Zero::Keep && !v.is_null() || !is_zero(&v) {
            out.insert(field.name.to_string(), v);
        }
    }
    Ok(out)
}

/// Decodes a protobuf body (envelope and object) into the object's JSON form, with `apiVersion`
/// and `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the Kubernetes magic bytes \"k8s\\0\""))?;
    let mut r = Reader { buf: rest };
    let (mut api_version, mut kind, mut raw, mut encoding, mut content_type) = (
        String::new(),
        String::new(),
        &[][..],
        String::new(),
        String::new(),
    );
    while let Some((number, wire)) = r.next()? {
        match number {
            1 => {
                let mut tm = Reader {
                    buf: bytes_of(wire, "Unknown.typeMeta")?,
                };
                while let Some((n, w)) = tm.next()? {
                    match n {
                        1 => api_version = utf8(bytes_of(w, "TypeMeta.apiVersion")?, "apiVersion")?,
                        2 => kind = utf8(bytes_of(w, "TypeMeta.kind")?, "kind")?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes_of(wire, "Unknown.raw")?,
            3 => {
                encoding = utf8(
                    bytes_of(wire, "Unknown.contentEncoding")?,
                    "contentEncoding",
                )?
            }
            4 => content_type = utf8(bytes_of(wire, "Unknown.contentType")?, "contentType")?,
            number => {
                return Err(ProtobufError::UnknownField {
                    message: "Unknown",
                    number,
                });
            }
        }
    }
    if !encoding.is_empty() {
        return Err(ProtobufError::Malformed(format!(
            "content encoding {encoding:?} is not supported"
        )));
    }
    if !content_type.is_empty() && content_type != "application/vnd.kubernetes.protobuf" {
        return Err(ProtobufError::Malformed(format!(
            "the envelope's content type {content_type:?} is not protobuf"
        )));
    }
    let Some(schema) = schema(&api_version, &kind) else {
        let what = if kind.is_empty() {
            "an object without a kind".to_string()
        } else {
            format!("{api_version} {kind}")
        };
        return Err(ProtobufError::UnsupportedKind {
            what,
            supported: supported_list(),
        });
    };
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    object.extend(message(schema, raw)?);
    Ok(Value::Object(object))
}

/// Encoding, for tests: the same wire format the decoder reads.
#[cfg(test)]
pub(crate) mod encode {
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    pub fn bytes(number: u32, b: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(number) << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    pub fn int(number: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(number) << 3, out);
        varint(v, out);
    }

    pub fn entry(number: u32, k: &str, v: &[u8], out: &mut Vec<u8>) {
        let mut e = Vec::new();
        bytes(1, k.as_bytes(), &mut e);
        bytes(2, v, &mut e);
        bytes(number, &e, out);
    }

    /// The envelope around an encoded object.
    pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        bytes(1, api_version.as_bytes(), &mut tm);
        bytes(2, kind.as_bytes(), &mut tm);
        let mut unknown = Vec::new();
        bytes(1, &tm, &mut unknown);
        bytes(2, raw, &mut unknown);
        bytes(3, b"", &mut unknown);
        bytes(4, b"", &mut unknown);
        let mut out = super::MAGIC.to_vec();
        out.extend(unknown);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;

    fn meta(name: &str) -> Vec<u8> {
        let mut m = Vec::new();
        bytes(1, name.as_bytes(), &mut m);
        bytes(2, b"", &mut m);
        int(7, 0, &mut m);
        bytes(8, b"", &mut m);
        entry(11, "app", b"web", &mut m);
        m
    }

    #[test]
    fn a_configmap_decodes_with_data_binary_data_and_metadata() {
        let mut raw = Vec::new();
        bytes(1, &meta("settings"), &mut raw);
        entry(2, "colour", b"blue", &mut raw);
        entry(3, "blob", &[0, 1, 2], &mut raw);
        let v = decode(&envelope("v1", "ConfigMap", &raw)).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "settings", "labels": { "app": "web" } },
                "data": { "colour": "blue" },
                "binaryData": { "blob": "AAEC" },
            })
        );
    }

    #[test]
    fn pointer_fields_keep_zero_and_value_fields_drop_it() {
        let mut spec = Vec::new();
        int(1, 0, &mut spec); // replicas: 0 is a real value
        int(5, 0, &mut spec); // minReadySeconds: 0 means unset
        let mut raw = Vec::new();
        bytes(1, &meta("web"), &mut raw);
        bytes(2, &spec, &mut raw);
        bytes(3, b"", &mut raw);
        let v = decode(&envelope("apps/v1", "Deployment", &raw)).unwrap();
        assert_eq!(v["spec"], json!({ "replicas": 0 }));
        assert_eq!(v["status"], json!({}));
    }

    #[test]
    fn a_pod_decodes_with_containers_tolerations_and_an_empty_status() {
        let mut port = Vec::new();
        int(3, 80, &mut port);
        bytes(4, b"TCP", &mut port);
        let mut c = Vec::new();
        bytes(1, b"web", &mut c);
        bytes(2, b"nginx:1.27", &mut c);
        bytes(6, &port, &mut c);
        bytes(8, b"", &mut c);
        int(16, 0, &mut c);
        let mut tol = Vec::new();
        bytes(1, b"dedicated", &mut tol);
        bytes(2, b"Exists", &mut tol);
        int(5, 60, &mut tol);
        let mut spec = Vec::new();
        bytes(2, &c, &mut spec);
        bytes(3, b"Never", &mut spec);
        int(4, 0, &mut spec);
        bytes(22, &tol, &mut spec);
        let mut status = Vec::new();
        bytes(1, b"", &mut status);
        int(17, 0, &mut status);
        let mut raw = Vec::new();
        bytes(1, &meta("p"), &mut raw);
        bytes(2, &spec, &mut raw);
        bytes(3, &status, &mut raw);
        let v = decode(&envelope("v1", "Pod", &raw)).unwrap();
        assert_eq!(
            v["spec"],
            json!({
                "containers": [{ "name": "web", "image": "nginx:1.27", "ports": [{ "containerPort": 80, "protocol": "TCP" }], "resources": {} }],
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "tolerations": [{ "key": "dedicated", "operator": "Exists", "tolerationSeconds": 60 }],
            })
        );
        assert_eq!(v["status"], json!({}));
    }

    #[test]
    fn an_eviction_keeps_its_delete_options() {
        let mut pre = Vec::new();
        bytes(2, b"7", &mut pre);
        let mut opts = Vec::new();
        int(1, 0, &mut opts);
        bytes(2, &pre, &mut opts);
        bytes(5, b"All", &mut opts);
        let mut raw = Vec::new();
        bytes(1, &meta("p"), &mut raw);
        bytes(2, &opts, &mut raw);
        let v = decode(&envelope("policy/v1", "Eviction", &raw)).unwrap();
        assert_eq!(
            v["deleteOptions"],
            json!({ "gracePeriodSeconds": 0, "preconditions": { "resourceVersion": "7" }, "dryRun": ["All"] })
        );
        assert_eq!(v["metadata"]["name"], "p");
    }

    #[test]
    fn unknown_kinds_and_fields_are_refused_by_name() {
        let e = decode(&envelope("v1", "Node", b"")).unwrap_err();
        assert!(
            e.to_string().contains("v1 Node is not among them")
                && e.to_string().contains("send it as JSON"),
            "{e}"
        );
        let mut raw = Vec::new();
        int(99, 1, &mut raw);
        let e = decode(&envelope("v1", "ConfigMap", &raw)).unwrap_err();
        assert_eq!(
            e,
            ProtobufError::UnknownField {
                message: "ConfigMap",
                number: 99
            }
        );
    }

    #[test]
    fn truncated_and_foreign_bodies_are_malformed() {
        assert!(matches!(
            decode(b"{\"a\":1}"),
            Err(ProtobufError::Malformed(_))
        ));
        let mut body = envelope("v1", "ConfigMap", b"");
        body.push(0x0a);
        body.push(0x7f);
        assert!(matches!(decode(&body), Err(ProtobufError::Malformed(_))));
    }
}
