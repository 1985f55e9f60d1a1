//! Guest bindings for the `policy` world. Each world lives in its own crate
//! because the generated export macros are crate-global names.

#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    world: "policy",
    path: "../../../wit",
    pub_export_macro: true,
    export_macro_name: "export_policy_world",
    default_bindings_module: "dovetail_policy_bindings",

});
