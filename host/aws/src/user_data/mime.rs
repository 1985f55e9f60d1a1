//! MIME multipart user data, as cloud-init and nodeadm read it.
//!
//! Parts keep all their headers. The boundary is `//`, as Karpenter's, unless
//! a part's content holds the delimiter; then a longer one that no part
//! holds is chosen, so no content can end a part early or add one.

/// One part of a multipart document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Header lines as (name, value), in order; `Content-Type` among them.
    pub headers: Vec<(String, String)>,
    pub content: String,
}

impl Part {
    pub fn new(content_type: &str, content: &str) -> Self {
        Self {
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            content: content.to_string(),
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
    }
}

/// `text/x-shellscript`, for a user's script.
pub const SHELL_SCRIPT: &str = "text/x-shellscript; charset=\"us-ascii\"";
/// nodeadm's `NodeConfig`.
pub const NODE_CONFIG: &str = "application/node.eks.aws";

const DEFAULT_BOUNDARY: &str = "//";

/// User data that says it is MIME and is not readable as such.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("user data MIME has no blank line between its headers and its body")]
    NoBody,
    #[error(
        "user data MIME is not multipart (Content-Type is {0:?}): use multipart/mixed with a boundary"
    )]
    NotMultipart(String),
    #[error("user data MIME Content-Type gives no boundary: add `boundary=\"...\"`")]
    NoBoundary,
    #[error("user data MIME never closes its boundary `--{0}--`")]
    Unterminated(String),
    #[error("user data MIME header line {0:?} is not `Name: value`")]
    BadHeader(String),
}

/// Whether user data announces itself as MIME.
pub fn looks_like_mime(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("MIME-Version:") || t.starts_with("Content-Type:")
}

/// Splits `text` at its first blank line into header lines and the rest.
fn split_headers(text: &str) -> Option<(Vec<&str>, &str)> {
    let mut offset = 0;
    let mut headers = Vec::new();
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.is_empty() {
            return Some((headers, &text[offset..]));
        }
        headers.push(bare);
    }
    None
}

fn parse_header(line: &str) -> Result<(String, String), MimeError> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| MimeError::BadHeader(line.to_string()))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(MimeError::BadHeader(line.to_string()));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// The `boundary` parameter of a Content-Type value.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Reads a multipart document's parts.
pub fn parse(text: &str) -> Result<Vec<Part>, MimeError> {
    let (header_lines, body) = split_headers(text.trim_start()).ok_or(MimeError::NoBody)?;
    let headers = header_lines
        .into_iter()
        .map(parse_header)
        .collect::<Result<Vec<_>, _>>()?;
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return Err(MimeError::NotMultipart(content_type));
    }
    let boundary = boundary_of(&content_type).ok_or(MimeError::NoBoundary)?;
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split_inclusive('\n') {
        let bare = line
            .trim_end_matches(['\n', '\r'])
            .trim_end_matches([' ', '\t']);
        if bare == close || bare == delimiter {
            if let Some(lines) = current.take() {
                parts.push(part(&lines.concat())?);
            }
            if bare == close {
                return Ok(parts);
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
        // Lines before the first delimiter are the preamble, ignored.
    }
    Err(MimeError::Unterminated(boundary))
}

fn part(raw: &str) -> Result<Part, MimeError> {
    let (lines, content) = split_headers(raw).unwrap_or((Vec::new(), raw));
    let headers = lines
        .into_iter()
        .map(parse_header)
        .collect::<Result<Vec<_>, _>>()?;
    // The line break before the next delimiter belongs to the delimiter.
    let content = content
        .strip_suffix('\n')
        .map(|c| c.strip_suffix('\r').unwrap_or(c))
        .unwrap_or(content);
    Ok(Part {
        headers,
        content: content.to_string(),
    })
}

/// A boundary whose delimiter occurs in no part.
fn boundary_for(parts: &[Part]) -> String {
    let clear = |b: &str| {
        let delimiter = format!("--{b}");
        parts.iter().all(|p| {
            !p.content.contains(&delimiter)
                && p.headers
                    .iter()
                    .all(|(k, v)| !k.contains(&delimiter) && !v.contains(&delimiter))
        })
    };
    if clear(DEFAULT_BOUNDARY) {
        return DEFAULT_BOUNDARY.to_string();
    }
    (1u64..)
        .map(|n| format!("{DEFAULT_BOUNDARY}{n}"))
        .find(|b| clear(b))
        .expect("some boundary is free")
}

/// Writes `parts` as a multipart/mixed document, lines ending in `\n`.
pub fn serialize(parts: &[Part]) -> String {
    let boundary = boundary_for(parts);
    let mut out =
        format!("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n");
    for p in parts {
        out.push_str(&format!("--{boundary}\n"));
        for (k, v) in &p.headers {
            // Header values are single lines: a line break would start a
            // header or the body of its own.
            let v: String = v
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&p.content);
        out.push('\n');
    }
    out.push_str(&format!("--{boundary}--\n"));
    out
}
