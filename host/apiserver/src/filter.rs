//! Which objects a list or watch returns, from its `labelSelector` and `fieldSelector`.
//!
//! Parsing and matching selectors belongs to the selector module; this is the one place lists
//! and watches ask. A selector the server cannot honour (bad grammar, a field the kind does not
//! select on) is a 400 naming it, never answered with unfiltered objects.

use serde_json::Value;

use crate::resource::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector, SelectorError};
use crate::status::ApiError;

/// A predicate over stored objects.
#[derive(Debug, Clone, Default)]
pub struct ObjectFilter {
    labels: Option<LabelSelector>,
    fields: Option<Fields>,
}

/// A field selector with the kind it was checked against.
#[derive(Debug, Clone)]
struct Fields {
    selector: FieldSelector,
    res: ResourceInfo,
}

impl ObjectFilter {
    /// Matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The filter for a request's selectors (`None` or empty: no selector).
    pub fn from_selectors(
        res: &ResourceInfo,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, ApiError> {
        let bad = |param: &str, e: SelectorError| {
            ApiError::BadRequest(format!("unable to parse {param} on {}: {e}", res.plural))
        };
        let labels = match label_selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => Some(LabelSelector::parse(text).map_err(|e| bad("labelSelector", e))?),
            None => None,
        };
        let fields = match field_selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => {
                let f = Fields {
                    selector: FieldSelector::parse(text).map_err(|e| bad("fieldSelector", e))?,
                    res: res.clone(),
                };
                // Real servers refuse a field the kind does not select on.
                f.selector
                    .validate(res.object_type())
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        Ok(Self { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.as_ref().is_none_or(|l| l.matches(obj))
            && self
                .fields
                .as_ref()
                .is_none_or(|f| f.selector.matches(f.res.object_type(), obj))
    }

    /// True when the filter can reject nothing (a list may then report `remainingItemCount`).
    pub fn is_everything(&self) -> bool {
        self.labels.as_ref().is_none_or(LabelSelector::is_empty)
            && self.fields.as_ref().is_none_or(|f| f.selector.is_empty())
    }
}
