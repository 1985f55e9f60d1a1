//! String enums as the API carries them: a value outside the enum is kept as
//! read (`Other`), so a manifest round-trips and `validate()` reports it
//! with its path instead of a parse error that stops at the first problem.

/// Defines a string enum with an `Other(String)` variant, its serde and
/// (with `kube`) a `{type: string, enum: [...]}` schema.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value outside the enum, kept as read; `validate()` refuses it.
            Other(String),
        }

        impl $name {
            /// The values the CRD allows, in its order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }

            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }

            /// Reports an `Other` value at `path`.
            pub(crate) fn check(&self, path: &$crate::error::Path, errors: &mut $crate::error::Errors) {
                if let Self::Other(v) = self {
                    errors.not_supported(path, v, Self::NAMES);
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::parse(&text))
            }
        }

        #[cfg(feature = "kube")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": Self::NAMES })
            }
        }
    };
}

pub(crate) use string_enum;
