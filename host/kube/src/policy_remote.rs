//! Where a policy component lives when it is too large for a ConfigMap
//! (1 MiB): a URL in the ConfigMap's `data` (`<decision>.url`) and the
//! sha256 of the component bytes (`<decision>.sha256`), which pins them.
//!
//! Only the text is read here; fetching needs an HTTP client, which the
//! controller has and this crate does not.

use std::fmt;

/// A component named by URL and pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSource {
    /// As written in the ConfigMap.
    pub url: String,
    pub location: Location,
    /// 64 lowercase hex digits: the sha256 of the component bytes.
    pub sha256: String,
}

impl fmt::Display for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// How the component is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An `https://` or `http://` URL answering GET with the component.
    /// Plain HTTP is allowed: the digest, not the transport, pins the bytes.
    Http(String),
    /// An artifact in an OCI registry, its component a layer.
    Oci(OciReference),
}

/// `oci://host[:port]/repo[:tag|@sha256:…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// `host[:port]`.
    pub registry: String,
    /// `org/name`, possibly deeper.
    pub repository: String,
    /// A tag, or `sha256:…` for a manifest by digest; `latest` when absent.
    pub reference: String,
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.reference.contains(':') {
            '@'
        } else {
            ':'
        };
        write!(
            f,
            "oci://{}/{}{sep}{}",
            self.registry, self.repository, self.reference
        )
    }
}

/// Why a URL cannot name a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the scheme is not https://, http:// or oci://")]
    UnknownScheme,
    #[error("{0}")]
    Malformed(&'static str),
}

/// Reads a component URL.
pub fn parse_url(url: &str) -> Result<Location, UrlError> {
    let url = url.trim();
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(UrlError::Malformed("it names no host"));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Malformed("it holds a space or control character"));
        }
        return Ok(Location::Http(url.to_string()));
    }
    let Some(rest) = url.strip_prefix("oci://") else {
        return Err(UrlError::UnknownScheme);
    };
    parse_oci(rest).map(Location::Oci)
}

fn parse_oci(rest: &str) -> Result<OciReference, UrlError> {
    let (registry, path) = rest
        .split_once('/')
        .ok_or(UrlError::Malformed("it names a registry but no repository"))?;
    if registry.is_empty() {
        return Err(UrlError::Malformed("it names no registry host"));
    }
    let (repository, reference) = match path.split_once('@') {
        Some((repo, digest)) => {
            let hex = digest.strip_prefix("sha256:").ok_or(UrlError::Malformed(
                "a digest reference must be `@sha256:` and 64 hex digits",
            ))?;
            if !is_sha256_hex(hex) {
                return Err(UrlError::Malformed(
                    "a digest reference must be `@sha256:` and 64 lowercase hex digits",
                ));
            }
            (repo, digest.to_string())
        }
        None => {
            // A `:` after the last `/` opens the tag; one before it is a port.
            let last = path.rsplit('/').next().unwrap_or(path);
            match last.rsplit_once(':') {
                Some((_, tag)) => {
                    let repo = &path[..path.len() - tag.len() - 1];
                    if tag.is_empty() || tag.len() > 128 || !tag.chars().all(is_tag_char) {
                        return Err(UrlError::Malformed(
                            "the tag must be 1 to 128 letters, digits, `_`, `.` or `-`",
                        ));
                    }
                    (repo, tag.to_string())
                }
                None => (path, "latest".to_string()),
            }
        }
    };
    let repo_ok = !repository.is_empty()
        && repository.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        });
    if !repo_ok {
        return Err(UrlError::Malformed(
            "the repository must be lowercase letters, digits, `.`, `_`, `-` and `/`",
        ));
    }
    Ok(OciReference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        reference,
    })
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `s` is 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A `<decision>.sha256` value: 64 lowercase hex digits. Surrounding
/// whitespace (a file's trailing newline) is ignored.
pub fn parse_sha256(text: &str) -> Option<String> {
    let t = text.trim();
    is_sha256_hex(t).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(s: &str) -> OciReference {
        match parse_url(s) {
            Ok(Location::Oci(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn oci_references_split_registry_repository_and_tag() {
        let r = oci("oci://ghcr.io/acme/policies/js-selector:1.2.0");
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.reference.as_str()
            ),
            ("ghcr.io", "acme/policies/js-selector", "1.2.0")
        );
        let r = oci("oci://127.0.0.1:5000/sel");
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.reference.as_str()
            ),
            ("127.0.0.1:5000", "sel", "latest")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = oci(&format!("oci://reg:443/a/b@{d}"));
        assert_eq!(
            (r.repository.as_str(), r.reference.as_str()),
            ("a/b", d.as_str())
        );
        assert_eq!(r.to_string(), format!("oci://reg:443/a/b@{d}"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(parse_url("ftp://x/y"), Err(UrlError::UnknownScheme));
        assert_eq!(parse_url("ghcr.io/a/b:1"), Err(UrlError::UnknownScheme));
        assert!(
            matches!(parse_url("oci://ghcr.io"), Err(UrlError::Malformed(m)) if m.contains("no repository"))
        );
        assert!(matches!(
            parse_url("oci://r/Upper:1"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            parse_url("oci://r/a@sha256:12"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            parse_url("https:///x"),
            Err(UrlError::Malformed(_))
        ));
        assert_eq!(
            parse_url("http://10.0.0.1:8080/p.wasm"),
            Ok(Location::Http("http://10.0.0.1:8080/p.wasm".into()))
        );
    }

    #[test]
    fn digests_are_64_lowercase_hex_digits() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(parse_sha256(&format!("{hex}\n")), Some(hex.clone()));
        assert_eq!(parse_sha256(&hex.to_uppercase()), None);
        assert_eq!(parse_sha256(&format!("sha256:{hex}")), None);
        assert_eq!(parse_sha256(&hex[..63]), None);
    }
}
