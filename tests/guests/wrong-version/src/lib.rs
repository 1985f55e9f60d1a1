//! A policy for `dovetail:policy@0.2.0`, a contract this host does not speak.

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({
        inline: "
            package dovetail:policy@0.2.0;
            interface meta {
                describe: func() -> string;
            }
            interface instance-selection {
                select: func(offerings: list<u32>) -> list<u32>;
            }
            world instance-selector {
                export meta;
                export instance-selection;
            }
        ",
        world: "instance-selector",
    });

    struct Future;

    impl exports::dovetail::policy::meta::Guest for Future {
        fn describe() -> String {
            "from-the-future".into()
        }
    }

    impl exports::dovetail::policy::instance_selection::Guest for Future {
        fn select(offerings: Vec<u32>) -> Vec<u32> {
            offerings
        }
    }

    export!(Future);
}
