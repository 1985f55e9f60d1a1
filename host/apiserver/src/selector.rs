//! Label selectors and field selectors as list and watch requests carry
//! them (`labelSelector=`, `fieldSelector=`), parsed with Kubernetes'
//! grammar (apimachinery `labels.Parse`, `fields.ParseSelector`) and matched
//! against objects held as `serde_json::Value`.
//!
//! Every error here is a 400 `BadRequest` for the server.

use serde_json::Value;

use crate::patch::ObjectType;

/// Why a selector was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// The label selector does not follow Kubernetes' grammar.
    #[error("{0}")]
    Label(String),
    /// The field selector does not follow Kubernetes' grammar.
    #[error("{0}")]
    Field(String),
    /// The resource has no selectable field of this name.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// Operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOperator {
    /// `k=v` or `k==v`.
    Equals,
    /// `k!=v`: also true when `k` is absent.
    NotEquals,
    /// `k in (a,b)`.
    In,
    /// `k notin (a,b)`: also true when `k` is absent.
    NotIn,
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>n`: the label is an integer greater than `n`.
    GreaterThan,
    /// `k<n`: the label is an integer less than `n`.
    LessThan,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    pub key: String,
    pub operator: LabelOperator,
    /// Sorted and without duplicates; empty for `Exists`/`DoesNotExist`.
    pub values: Vec<String>,
}

impl LabelRequirement {
    /// Whether a label set (`metadata.labels`) satisfies this requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        let contains = |v: &str| self.values.iter().any(|want| want == v);
        match self.operator {
            LabelOperator::Equals | LabelOperator::In => value.is_some_and(contains),
            LabelOperator::NotEquals | LabelOperator::NotIn => !value.is_some_and(contains),
            LabelOperator::Exists => value.is_some(),
            LabelOperator::DoesNotExist => value.is_none(),
            LabelOperator::GreaterThan | LabelOperator::LessThan => {
                let (Some(have), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == LabelOperator::GreaterThan {
                    have > bound
                } else {
                    have < bound
                }
            }
        }
    }
}

/// A parsed label selector: all requirements must hold. The empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses a selector such as `app=web,tier in (a,b),!legacy`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parser = LabelParser {
            tokens: lex(selector),
            position: 0,
        };
        let mut requirements = parser.parse().map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `object`'s `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    In,
    NotIn,
    Bang,
    NotEquals,
    Equals,
    DoubleEquals,
    GreaterThan,
    LessThan,
    OpenParen,
    CloseParen,
    Comma,
    End,
}

impl Token {
    /// The text upstream quotes in its "found '…'" messages.
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Bang => "!",
            Token::NotEquals => "!=",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::OpenParen => "(",
            Token::CloseParen => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_whitespace(c) {
            chars.next();
            continue;
        }
        if is_special(c) {
            chars.next();
            let next = chars.peek().map(|&(_, n)| n);
            let token = match (c, next) {
                ('!', Some('=')) => Some(Token::NotEquals),
                ('=', Some('=')) => Some(Token::DoubleEquals),
                _ => None,
            };
            if let Some(token) = token {
                chars.next();
                tokens.push(token);
                continue;
            }
            tokens.push(match c {
                '!' => Token::Bang,
                '=' => Token::Equals,
                '>' => Token::GreaterThan,
                '<' => Token::LessThan,
                '(' => Token::OpenParen,
                ')' => Token::CloseParen,
                _ => Token::Comma,
            });
            continue;
        }
        let mut end = input.len();
        while let Some(&(i, c)) = chars.peek() {
            if is_whitespace(c) || is_special(c) {
                end = i;
                break;
            }
            chars.next();
        }
        tokens.push(match &input[start..end] {
            "in" => Token::In,
            "notin" => Token::NotIn,
            word => Token::Identifier(word.to_owned()),
        });
    }
    tokens.push(Token::End);
    tokens
}

struct LabelParser {
    tokens: Vec<Token>,
    position: usize,
}

impl LabelParser {
    /// The next token, with `in`/`notin` read as plain identifiers, as
    /// upstream does wherever a key or value may stand.
    fn peek(&self) -> Token {
        match self
            .tokens
            .get(self.position)
            .cloned()
            .unwrap_or(Token::End)
        {
            Token::In => Token::Identifier("in".into()),
            Token::NotIn => Token::Identifier("notin".into()),
            other => other,
        }
    }

    fn next(&mut self) -> Token {
        let token = self.peek();
        self.position += 1;
        token
    }

    /// The next token as an operator position reads it.
    fn next_raw(&mut self) -> Token {
        let token = self
            .tokens
            .get(self.position)
            .cloned()
            .unwrap_or(Token::End);
        self.position += 1;
        token
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.peek() {
                Token::Identifier(_) | Token::Bang => {
                    let requirement = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    match self.next() {
                        Token::End => return Ok(requirements),
                        Token::Comma => match self.peek() {
                            Token::Identifier(_) | Token::Bang => {}
                            other => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    other.literal()
                                ));
                            }
                        },
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                other => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<LabelRequirement, String> {
        let mut token = self.next();
        let negated = token == Token::Bang;
        if negated {
            token = self.next();
        }
        let Token::Identifier(key) = token else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        validate_label_key(&key)?;
        if negated || matches!(self.peek(), Token::End | Token::Comma) {
            let operator = if negated {
                LabelOperator::DoesNotExist
            } else {
                LabelOperator::Exists
            };
            return Ok(LabelRequirement {
                key,
                operator,
                values: Vec::new(),
            });
        }
        let operator = match self.next_raw() {
            Token::In => LabelOperator::In,
            Token::NotIn => LabelOperator::NotIn,
            Token::Equals | Token::DoubleEquals => LabelOperator::Equals,
            Token::NotEquals => LabelOperator::NotEquals,
            Token::GreaterThan => LabelOperator::GreaterThan,
            Token::LessThan => LabelOperator::LessThan,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                ));
            }
        };
        let mut values = match operator {
            LabelOperator::In | LabelOperator::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        values.sort();
        values.dedup();
        for value in &values {
            validate_label_value(&key, value)?;
        }
        if matches!(
            operator,
            LabelOperator::GreaterThan | LabelOperator::LessThan
        ) && values.iter().any(|v| v.parse::<i64>().is_err())
        {
            return Err(format!(
                "for 'Gt', 'Lt' operators, the value must be an integer, got {values:?} for key {key:?}"
            ));
        }
        Ok(LabelRequirement {
            key,
            operator,
            values,
        })
    }

    fn exact_value(&mut self) -> Result<String, String> {
        match self.peek() {
            Token::End | Token::Comma => Ok(String::new()),
            _ => match self.next() {
                Token::Identifier(value) => Ok(value),
                other => Err(format!("found '{}', expected: identifier", other.literal())),
            },
        }
    }

    /// `( a, b )`; empty members (`()`, `(a,)`) stand for the empty value.
    fn value_set(&mut self) -> Result<Vec<String>, String> {
        let open = self.next();
        if open != Token::OpenParen {
            return Err(format!("found '{}', expected: '('", open.literal()));
        }
        let mut values = Vec::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Identifier(value) if expect_value => {
                    values.push(value);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Token::CloseParen => {
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                other if expect_value => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        other.literal()
                    ));
                }
                other => {
                    return Err(format!("found '{}', expected: ',' or ')'", other.literal()));
                }
            }
        }
    }
}

/// Label keys are qualified names: an optional DNS-subdomain prefix and `/`,
/// then a name of at most 63 characters (apimachinery `IsQualifiedName`).
fn validate_label_key(key: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid label key \"{key}\": {why}"));
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return bad("prefix part must be non-empty");
        }
        if !is_dns_subdomain(prefix) {
            return bad(
                "prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters",
            );
        }
    }
    if name.is_empty() {
        return bad("name part must be non-empty");
    }
    if name.len() > 63 {
        return bad("name part must be no more than 63 characters");
    }
    if !is_label_name(name) {
        return bad(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// Label values: empty, or at most 63 characters of `[A-Za-z0-9-_.]`
/// beginning and ending with an alphanumeric.
fn validate_label_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_label_name(value)) {
        return Ok(());
    }
    Err(format!(
        "invalid label value: \"{value}\" for key \"{key}\": a valid label must be an empty string or consist of at most 63 alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    ))
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let bytes = part.as_bytes();
            let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(edge)
                && bytes.last().is_some_and(edge)
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        })
}

/// Operator of one field selector term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `f=v` or `f==v`.
    Equals,
    /// `f!=v`.
    NotEquals,
}

/// One comma-separated term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    /// Unescaped (`\,`, `\=` and `\\` in the query).
    pub value: String,
}

/// A parsed field selector: all terms must hold. The empty selector matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a field selector such as `spec.nodeName=n1,status.phase!=Failed`.
    /// Whitespace is significant, as upstream: `a = b` names field `a `.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort();
        let mut requirements = Vec::new();
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_term(&term) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{selector}'; can't understand '{term}'"
                )));
            };
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(Self { requirements })
    }

    /// Parses `selector` and checks that `object` kinds can be selected by
    /// each field, as the server must before listing.
    pub fn parse_for(selector: &str, object: ObjectType<'_>) -> Result<Self, SelectorError> {
        let parsed = Self::parse(selector)?;
        parsed.validate(object)?;
        Ok(parsed)
    }

    /// Refuses fields that `object` kinds do not expose for selection.
    pub fn validate(&self, object: ObjectType<'_>) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| selectable(object, &r.field).is_none())
        {
            Some(r) => Err(SelectorError::UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `object` (of kind `object_type`) satisfies every term. A field
    /// the kind does not expose never matches; call [`Self::validate`] first
    /// to turn that into an error.
    pub fn matches(&self, object_type: ObjectType<'_>, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let Some(path) = selectable(object_type, &r.field) else {
                return false;
            };
            let actual = field_value(object, path);
            match r.operator {
                FieldOperator::Equals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }
}

/// How a selectable field reads its value from the object.
#[derive(Debug, Clone, Copy)]
enum FieldPath {
    /// A string at this path; absent reads as `""`.
    String(&'static [&'static str]),
    /// A boolean at this path, as `"true"`/`"false"`; absent reads `"false"`.
    Bool(&'static [&'static str]),
    /// An integer at this path; absent reads `"0"`.
    Integer(&'static [&'static str]),
}

/// The fields each kind exposes (the `*ToSelectableFields` functions and
/// field label conversions of kubernetes/pkg/registry and pkg/apis).
fn selectable(object: ObjectType<'_>, field: &str) -> Option<FieldPath> {
    use FieldPath::{Bool, Integer, String as Str};
    match field {
        "metadata.name" => return Some(Str(&["metadata", "name"])),
        "metadata.namespace" => return Some(Str(&["metadata", "namespace"])),
        _ => {}
    }
    let ObjectType::BuiltIn { group, kind } = object else {
        return None;
    };
    Some(match (group, kind, field) {
        ("", "Pod", "spec.nodeName") => Str(&["spec", "nodeName"]),
        ("", "Pod", "spec.restartPolicy") => Str(&["spec", "restartPolicy"]),
        ("", "Pod", "spec.schedulerName") => Str(&["spec", "schedulerName"]),
        ("", "Pod", "spec.serviceAccountName") => Str(&["spec", "serviceAccountName"]),
        ("", "Pod", "spec.hostNetwork") => Bool(&["spec", "hostNetwork"]),
        ("", "Pod", "status.phase") => Str(&["status", "phase"]),
        ("", "Pod", "status.podIP") => Str(&["status", "podIP"]),
        ("", "Pod", "status.nominatedNodeName") => Str(&["status", "nominatedNodeName"]),
        ("", "Node", "spec.unschedulable") => Bool(&["spec", "unschedulable"]),
        ("", "Namespace", "status.phase") => Str(&["status", "phase"]),
        ("apps", "ReplicaSet", "status.replicas") => Integer(&["status", "replicas"]),
        ("", "Event", "involvedObject.kind") => Str(&["involvedObject", "kind"]),
        ("", "Event", "involvedObject.namespace") => Str(&["involvedObject", "namespace"]),
        ("", "Event", "involvedObject.name") => Str(&["involvedObject", "name"]),
        ("", "Event", "involvedObject.uid") => Str(&["involvedObject", "uid"]),
        ("", "Event", "involvedObject.apiVersion") => Str(&["involvedObject", "apiVersion"]),
        ("", "Event", "involvedObject.resourceVersion") => {
            Str(&["involvedObject", "resourceVersion"])
        }
        ("", "Event", "involvedObject.fieldPath") => Str(&["involvedObject", "fieldPath"]),
        ("", "Event", "reason") => Str(&["reason"]),
        ("", "Event", "reportingComponent") => Str(&["reportingComponent"]),
        ("", "Event", "source") => Str(&["source", "component"]),
        ("", "Event", "type") => Str(&["type"]),
        _ => return None,
    })
}

fn field_value(object: &Value, path: FieldPath) -> String {
    let lookup = |segments: &[&str]| {
        segments
            .iter()
            .try_fold(object, |value, segment| value.get(segment))
    };
    match path {
        FieldPath::String(segments) => lookup(segments)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        FieldPath::Bool(segments) => lookup(segments)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        FieldPath::Integer(segments) => lookup(segments)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
    }
}

/// Splits on commas that are not escaped, keeping escapes in place.
fn split_terms(selector: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in selector.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    terms.push(current);
    terms
}

/// The first `!=`, `==` or `=` splits field from value.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(SelectorError::Field(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    )));
                }
                None => {
                    return Err(SelectorError::Field(format!(
                        "invalid field selector: unterminated escape sequence in {raw:?}"
                    )));
                }
            },
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character {c} in value {raw:?}"
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;
