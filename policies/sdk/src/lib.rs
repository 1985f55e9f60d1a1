//! Write Dovetail decision policies in Rust.
//!
//! A policy is a type implementing [`Policy`] plus [`SelectInstances`],
//! [`ScoreConsolidation`] or both, exported with one macro line:
//!
//! ```
//! use dovetail_policy_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct Cheapest;
//!
//! impl Policy for Cheapest {
//!     const NAME: &'static str = "cheapest";
//!     const VERSION: &'static str = "0.1.0";
//! }
//!
//! impl SelectInstances for Cheapest {
//!     fn pick(&self, req: &SelectionRequest, launch: &LaunchRequest) -> Result<Vec<u32>, PolicyError> {
//!         let mut rows = acceptable_or_error(req, launch)?;
//!         rank_by(&mut rows, |r| req.offering(r).price());
//!         truncate(req, launch, &rows)
//!     }
//! }
//!
//! dovetail_policy_sdk::export_instance_selector!(Cheapest);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to deploy. The same code
//! runs natively, so policies are unit-tested with plain `cargo test`.
//!
//! Data arrives in columns (see `wit/policy.wit`); the row views
//! (`request.offering(i)`, `context.candidate(i)`) read them like records.
//! One instance serves one decision batch: state does not survive between
//! decisions, and `configure` runs on every instance before the call.

mod config;
mod convert;

pub use config::Config;
pub use dovetail_core::policy::{
    consolidate, document, select, types,
    types::{
        Attribute, ConfigError, ConsolidationContext, Decision, Demand, ErrorKind, LaunchRequest,
        MinValues, PolicyError, ProposedMove, Ranking, Selection, SelectionRequest, Verdict,
    },
    view::{Candidate, CapacityType, Offering, Reason},
};

/// Everything a policy usually needs.
pub mod prelude {
    pub use crate::consolidate::{
        approve_balanced, approve_strictly_cheaper, approve_with_savings_threshold, balanced_rank,
        balanced_score, default_approve, default_rank, delete_move, is_strictly_cheaper,
        lifetime_remaining, removed_cost, scaled_disruption_cost,
    };
    pub use crate::select::{
        acceptable, acceptable_or_error, default_pick, default_select, fits, rank_by,
        rank_cheapest, truncate,
    };
    pub use crate::{
        Attribute, Candidate, CapacityType, Config, ConfigError, ConsolidationContext, ErrorKind,
        LaunchRequest, Level, Offering, Policy, PolicyError, ProposedMove, Ranking, Reason,
        ScoreConsolidation, SelectInstances, Selection, SelectionRequest, Verdict, log,
    };
}

/// Identity and configuration of a policy.
pub trait Policy: Default + 'static {
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str = "";

    /// Applies the operator's JSON config. The default accepts only an empty
    /// object, so a typo in a config for a policy without settings is caught.
    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        config.deny_unknown(&[])
    }
}

/// Instance selection.
pub trait SelectInstances: Policy {
    /// Offering rows for one launch, best first.
    fn pick(
        &self,
        request: &SelectionRequest,
        launch: &LaunchRequest,
    ) -> Result<Vec<u32>, PolicyError>;

    /// The whole round; override to share work across launches.
    fn select(&self, request: &SelectionRequest) -> Selection {
        request
            .requests
            .iter()
            .map(|launch| self.pick(request, launch))
            .collect()
    }
}

/// Consolidation scoring.
pub trait ScoreConsolidation: Policy {
    /// One score per candidate, lower first; `None` excludes it. Karpenter's
    /// ranking (cheapest to disrupt first) unless overridden.
    fn rank(&self, context: &ConsolidationContext) -> Result<Ranking, PolicyError> {
        Ok(consolidate::default_rank(context))
    }

    /// Whether one proposed move is worth its disruption.
    fn approve_move(&self, context: &ConsolidationContext, proposed: &ProposedMove) -> Verdict;

    /// All moves of a round.
    fn approve(
        &self,
        context: &ConsolidationContext,
        moves: &[ProposedMove],
    ) -> Result<Vec<Verdict>, PolicyError> {
        Ok(moves
            .iter()
            .map(|m| self.approve_move(context, m))
            .collect())
    }
}

/// Log levels of the host's `log` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Logs through the host (natively: to stderr, so tests show it).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::dovetail::policy::log as host;
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        if host::enabled(level) {
            host::log(level, message);
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
pub use dovetail_policy_bindings as bindings;
#[doc(hidden)]
pub use dovetail_scorer_bindings as scorer_bindings;
#[doc(hidden)]
pub use dovetail_selector_bindings as selector_bindings;

#[doc(hidden)]
pub mod __private {
    //! Glue the export macros expand to; not for direct use.
    use std::cell::RefCell;

    pub use crate::convert::*;

    use crate::{Config, Policy};

    /// Applies `json` to a fresh `P` and stores it for the decision call.
    pub fn configure<P: Policy>(
        slot: &'static std::thread::LocalKey<RefCell<Option<P>>>,
        json: &str,
    ) -> Result<(), crate::ConfigError> {
        let config = Config::parse(json)?;
        let mut policy = P::default();
        policy.configure(&config)?;
        slot.with(|s| *s.borrow_mut() = Some(policy));
        Ok(())
    }

    /// Runs `f` with the configured policy (a default one if the host skipped
    /// `configure`).
    pub fn with<P: Policy, R>(
        slot: &'static std::thread::LocalKey<RefCell<Option<P>>>,
        f: impl FnOnce(&P) -> R,
    ) -> R {
        slot.with(|s| {
            let mut s = s.borrow_mut();
            f(s.get_or_insert_with(P::default))
        })
    }
}

/// Implements the `meta` interface for `$ty` inside the bindings module `$m`.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_meta {
    ($m:path, $ty:ty, $export:ident, [$($decision:ident),*]) => {
        use $m as __bindings;
        thread_local! {
            static __POLICY: ::std::cell::RefCell<Option<$ty>> = const { ::std::cell::RefCell::new(None) };
        }
        impl __bindings::exports::dovetail::policy::meta::Guest for $export {
            fn describe() -> __bindings::exports::dovetail::policy::meta::PolicyInfo {
                use __bindings::exports::dovetail::policy::meta::{Decision, PolicyInfo};
                PolicyInfo {
                    name: <$ty as $crate::Policy>::NAME.to_string(),
                    version: <$ty as $crate::Policy>::VERSION.to_string(),
                    description: <$ty as $crate::Policy>::DESCRIPTION.to_string(),
                    decisions: vec![$(Decision::$decision),*],
                }
            }
            fn configure(
                config: String,
            ) -> Result<(), __bindings::exports::dovetail::policy::meta::ConfigError> {
                $crate::__private::configure::<$ty>(&__POLICY, &config).map_err(|e| {
                    __bindings::exports::dovetail::policy::meta::ConfigError {
                        field: e.field,
                        message: e.message,
                    }
                })
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_selection {
    ($ty:ty, $export:ident) => {
        impl __bindings::exports::dovetail::policy::instance_selection::Guest for $export {
            fn select(
                request: $crate::bindings::dovetail::policy::types::SelectionRequest,
            ) -> Vec<Result<Vec<u32>, $crate::bindings::dovetail::policy::types::PolicyError>> {
                let request = $crate::__private::selection_request(request);
                let selection = $crate::__private::with(&__POLICY, |p: &$ty| {
                    <$ty as $crate::SelectInstances>::select(p, &request)
                });
                $crate::__private::selection(selection)
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_scoring {
    ($ty:ty, $export:ident) => {
        impl __bindings::exports::dovetail::policy::consolidation_scoring::Guest for $export {
            fn rank(
                context: $crate::bindings::dovetail::policy::types::ConsolidationContext,
            ) -> Result<Vec<Option<f64>>, $crate::bindings::dovetail::policy::types::PolicyError>
            {
                let context = $crate::__private::consolidation_context(context);
                $crate::__private::with(&__POLICY, |p: &$ty| {
                    <$ty as $crate::ScoreConsolidation>::rank(p, &context)
                })
                .map_err($crate::__private::policy_error)
            }
            fn approve(
                context: $crate::bindings::dovetail::policy::types::ConsolidationContext,
                moves: $crate::bindings::dovetail::policy::types::MoveTable,
            ) -> Result<
                Vec<$crate::bindings::dovetail::policy::types::Verdict>,
                $crate::bindings::dovetail::policy::types::PolicyError,
            > {
                let context = $crate::__private::consolidation_context(context);
                let moves = $crate::__private::moves(moves)?;
                $crate::__private::with(&__POLICY, |p: &$ty| {
                    <$ty as $crate::ScoreConsolidation>::approve(p, &context, &moves)
                })
                .map($crate::__private::verdicts)
                .map_err($crate::__private::policy_error)
            }
        }
    };
}

/// Exports `$ty` (a [`SelectInstances`] policy) as an `instance-selector` component.
#[macro_export]
macro_rules! export_instance_selector {
    ($ty:ty) => {
        // Natively the policy is a plain library for tests: component
        // export names are not valid native symbol names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DovetailExport;
            $crate::__impl_meta!($crate::selector_bindings, $ty, __DovetailExport, [InstanceSelection]);
            $crate::__impl_selection!($ty, __DovetailExport);
            $crate::selector_bindings::export_selector_world!(__DovetailExport with_types_in $crate::selector_bindings);
        };
    };
}

/// Exports `$ty` (a [`ScoreConsolidation`] policy) as a `consolidation-scorer` component.
#[macro_export]
macro_rules! export_consolidation_scorer {
    ($ty:ty) => {
        // Natively the policy is a plain library for tests: component
        // export names are not valid native symbol names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DovetailExport;
            $crate::__impl_meta!($crate::scorer_bindings, $ty, __DovetailExport, [ConsolidationScoring]);
            $crate::__impl_scoring!($ty, __DovetailExport);
            $crate::scorer_bindings::export_scorer_world!(__DovetailExport with_types_in $crate::scorer_bindings);
        };
    };
}

/// Exports `$ty`, implementing both decisions, as a `policy` component.
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        // Natively the policy is a plain library for tests: component
        // export names are not valid native symbol names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DovetailExport;
            $crate::__impl_meta!(
                $crate::bindings,
                $ty,
                __DovetailExport,
                [InstanceSelection, ConsolidationScoring]
            );
            $crate::__impl_selection!($ty, __DovetailExport);
            $crate::__impl_scoring!($ty, __DovetailExport);
    $crate::bindings::export_policy_world!(__DovetailExport with_types_in $crate::bindings);
        };
    };
}
