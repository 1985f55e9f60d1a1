//! Guest bindings for the `instance-selector` world. Each world lives in its own crate
//! because the generated export macros are crate-global names.

#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    world: "instance-selector",
    path: "../../../wit",
    pub_export_macro: true,
    export_macro_name: "export_selector_world",
    default_bindings_module: "dovetail_selector_bindings",
    with: {
        "dovetail:policy/types@0.1.0": dovetail_policy_bindings::dovetail::policy::types,
        "dovetail:policy/log@0.1.0": dovetail_policy_bindings::dovetail::policy::log,
    },
});
