//! API errors the executor does not handle, as [`ActionError`]s that name
//! the object and say what to do.

use dovetail_control::actions::ActionError;

/// One write to one object: the verb and resource name the ClusterRole must
/// grant, and the object.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub verb: &'static str,
    /// The plural resource, with its subresource (`nodeclaims/status`).
    pub resource: &'static str,
    /// `name`, or `namespace/name`.
    pub object: String,
}

impl Target {
    pub fn new(verb: &'static str, resource: &'static str, object: impl Into<String>) -> Self {
        Self {
            verb,
            resource,
            object: object.into(),
        }
    }

    /// The read a write starts from: `get` on the resource itself.
    pub fn read(&self) -> Target {
        Target {
            verb: "get",
            resource: self.resource.split('/').next().unwrap_or(self.resource),
            object: self.object.clone(),
        }
    }

    fn action(&self) -> String {
        format!("{} {} {}", self.verb, self.resource, self.object)
    }

    /// The API server (or the way to it) refused the write.
    pub fn failed(&self, e: &kube::Error) -> ActionError {
        let message = match e {
            kube::Error::Api(s) => {
                let said = if s.message.is_empty() {
                    format!("{} {}", s.code, s.reason)
                } else {
                    format!("{} {}: {}", s.code, s.reason, s.message)
                };
                format!("the API server answered {said}; {}", self.fix(s.code))
            }
            other => format!(
                "the API server could not be reached ({other}); check the network path to it and its health; the next reconcile tries again"
            ),
        };
        ActionError {
            action: self.action(),
            message,
        }
    }

    /// Conflicting writers kept winning.
    pub fn kept_conflicting(&self, attempts: u32) -> ActionError {
        ActionError {
            action: self.action(),
            message: format!(
                "another writer changed it between each of {attempts} reads and writes; the next reconcile tries again from what it then sees"
            ),
        }
    }

    /// Something the executor checks itself.
    pub fn refused(&self, message: impl Into<String>) -> ActionError {
        ActionError {
            action: self.action(),
            message: message.into(),
        }
    }

    fn fix(&self, code: u16) -> String {
        match code {
            401 => "check the credentials Dovetail runs with (its ServiceAccount token or kubeconfig)".into(),
            403 => format!(
                "grant Dovetail's ServiceAccount `{}` on `{}` in its ClusterRole",
                self.verb, self.resource
            ),
            409 => "another writer holds it; the next reconcile tries again from what it then sees".into(),
            400 | 422 => format!(
                "the API server refused what Dovetail wrote; check admission webhooks and policies that apply to `{}`, otherwise report this message as a Dovetail bug",
                self.resource
            ),
            429 => "the API server is throttling requests; lower KUBE_CLIENT_QPS/BURST or raise the API server's limits; the next reconcile tries again".into(),
            c if c >= 500 => "the API server is failing; check its health; the next reconcile tries again".into(),
            _ => "the next reconcile tries again".into(),
        }
    }
}

/// The HTTP status of an API error.
pub(super) fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub(super) fn is(e: &kube::Error, c: u16) -> bool {
    code(e) == Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, reason)
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn errors_name_the_object_and_the_fix() {
        let t = Target::new("create", "nodeclaims", "default-x7k2p");
        let e = t.failed(&api(403, "Forbidden", "nodeclaims is forbidden"));
        assert_eq!(e.action, "create nodeclaims default-x7k2p");
        assert!(
            e.message.contains("403 Forbidden: nodeclaims is forbidden"),
            "{e}"
        );
        assert!(
            e.message
                .contains("grant Dovetail's ServiceAccount `create` on `nodeclaims`"),
            "{e}"
        );
        let e = t.failed(&api(422, "Invalid", "spec.requirements: Invalid value"));
        assert!(e.message.contains("admission webhooks"), "{e}");
        let e = t.kept_conflicting(5);
        assert!(e.message.contains("5 reads and writes"), "{e}");
    }
}
