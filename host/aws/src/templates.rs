//! Launch templates in EC2: made once per option set and reused, found
//! again after a restart by their hash name, and deleted once no
//! EC2NodeClass of the cluster uses them.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Mutex, PoisonError};

use aws_sdk_ec2::types::Filter;

use crate::api_error::ApiError;
use crate::launch::tags::{CLUSTER_PREFIX, NODE_CLASS};
use crate::launch::template::{LaunchTemplateOptions, NAME_PREFIX};

/// The code EC2 answers `CreateLaunchTemplate` with when the name is taken.
pub const ALREADY_EXISTS: &str = "InvalidLaunchTemplateName.AlreadyExistsException";

/// The code EC2 answers with when a named template does not exist.
pub const NOT_FOUND: &str = "InvalidLaunchTemplateName.NotFoundException";

/// Templates per `DescribeLaunchTemplates` page when listing the cluster's.
const PAGE_SIZE: i32 = 200;

/// A launch template call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchTemplateError {
    #[error("launch template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: ApiError,
    },
    #[error("listing the cluster's launch templates: {0}")]
    List(#[source] ApiError),
}

impl LaunchTemplateError {
    /// The failed call.
    pub fn api_error(&self) -> &ApiError {
        match self {
            Self::Template { source, .. } | Self::List(source) => source,
        }
    }
}

/// The names of templates known to exist, shared by every launch.
#[derive(Debug, Default)]
pub struct LaunchTemplates {
    known: Mutex<HashSet<String>>,
}

impl LaunchTemplates {
    pub fn new() -> Self {
        Self::default()
    }

    fn is_known(&self, name: &str) -> bool {
        // The set stays valid if a holder panicked.
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
    }

    fn remember(&self, name: &str) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string());
    }

    /// Makes sure the template of `options` exists and returns its name. A
    /// name made or found before is trusted; otherwise the template is
    /// looked up by name and created when missing. A template created
    /// meanwhile by another launch or controller counts as found.
    pub async fn ensure(
        &self,
        ec2: &aws_sdk_ec2::Client,
        options: &LaunchTemplateOptions,
    ) -> Result<String, LaunchTemplateError> {
        let name = options.name();
        if self.is_known(&name) {
            return Ok(name);
        }
        let failed = |source| LaunchTemplateError::Template {
            name: name.clone(),
            source,
        };
        match ec2
            .describe_launch_templates()
            .launch_template_names(&name)
            .send()
            .await
        {
            Ok(found) if !found.launch_templates().is_empty() => {
                self.remember(&name);
                return Ok(name);
            }
            Ok(_) => {}
            Err(e) => {
                let err = failed(ApiError::from_sdk("ec2:DescribeLaunchTemplates", &e));
                if !err.api_error().is_code(NOT_FOUND) {
                    return Err(err);
                }
            }
        }
        let created = ec2
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(options.request_data())
            .tag_specifications(options.template_tag_specification(&name))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) => {
                let err = failed(ApiError::from_sdk("ec2:CreateLaunchTemplate", &e));
                if !err.api_error().is_code(ALREADY_EXISTS) {
                    return Err(err);
                }
            }
        }
        self.remember(&name);
        Ok(name)
    }

    /// Forgets `name`, so the next `ensure` of its options looks it up (and
    /// re-creates it) again: for when a launch found it missing.
    pub fn forget(&self, name: &str) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Deletes the templates of cluster `cluster_name` (its cluster tag and
    /// Dovetail's name prefix) whose EC2NodeClass is not in `live_classes`,
    /// and returns their names. A template already gone counts as deleted.
    pub async fn collect_garbage(
        &self,
        ec2: &aws_sdk_ec2::Client,
        cluster_name: &str,
        live_classes: &BTreeSet<String>,
    ) -> Result<Vec<String>, LaunchTemplateError> {
        let cluster_tag = format!("{CLUSTER_PREFIX}{cluster_name}");
        let mut pages = ec2
            .describe_launch_templates()
            .filters(
                Filter::builder()
                    .name(format!("tag:{cluster_tag}"))
                    .values("owned")
                    .build(),
            )
            .filters(Filter::builder().name("tag-key").values(NODE_CLASS).build())
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut doomed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                LaunchTemplateError::List(ApiError::from_sdk("ec2:DescribeLaunchTemplates", &e))
            })?;
            for template in page.launch_templates() {
                let Some(name) = template.launch_template_name() else {
                    continue;
                };
                let tag = |key: &str| {
                    template
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                };
                // The filters are checked again: a template this cluster
                // did not make must never be deleted.
                let ours = name.starts_with(NAME_PREFIX) && tag(&cluster_tag) == Some("owned");
                let class = tag(NODE_CLASS);
                if ours && class.is_some_and(|c| !live_classes.contains(c)) {
                    doomed.push(name.to_string());
                }
            }
        }
        let mut deleted = Vec::new();
        for name in doomed {
            self.forget(&name);
            match ec2
                .delete_launch_template()
                .launch_template_name(&name)
                .send()
                .await
            {
                Ok(_) => deleted.push(name),
                Err(e) => {
                    let source = ApiError::from_sdk("ec2:DeleteLaunchTemplate", &e);
                    if source.is_code(NOT_FOUND) {
                        deleted.push(name);
                    } else {
                        return Err(LaunchTemplateError::Template { name, source });
                    }
                }
            }
        }
        Ok(deleted)
    }
}
