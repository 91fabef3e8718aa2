//! `field_enum!`: typed header field values with a catch-all.

/// Declares an enum of named values for a header field, plus an
/// `Unknown(raw)` catch-all, convertible from and to the raw integer.
///
/// The generated enum implements `From<raw>` and `Into<raw>` (so it can be a
/// `#[field(uN)]` typed field of a `#[header]`), `Debug`, `Clone`, `Copy`,
/// and `PartialEq`/`Eq`/`Hash` **by raw value**: `Unknown(6)` equals the
/// variant whose value is 6. Conversions are `const fn`s too: `from_raw` and
/// `raw`.
///
/// ```
/// tpa::field_enum! {
///     /// IP protocol numbers.
///     pub enum IpProtocol: u8 {
///         /// Internet Control Message Protocol.
///         Icmp = 1,
///         Tcp = 6,
///         Udp = 17,
///     }
/// }
///
/// assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
/// assert_eq!(IpProtocol::from(99), IpProtocol::Unknown(99));
/// assert_eq!(u8::from(IpProtocol::Udp), 17);
/// assert_eq!(IpProtocol::Unknown(17), IpProtocol::Udp);
/// assert_eq!(IpProtocol::from_raw(1).raw(), 1);
/// ```
#[macro_export]
macro_rules! field_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $raw:ty {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy)]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )*
            /// A value without a name here.
            Unknown($raw),
        }

        impl $name {
            /// The value for a raw field value.
            #[inline]
            pub const fn from_raw(raw: $raw) -> Self {
                match raw {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The raw field value.
            #[inline]
            pub const fn raw(self) -> $raw {
                match self {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl ::core::convert::From<$raw> for $name {
            #[inline]
            fn from(raw: $raw) -> Self {
                $name::from_raw(raw)
            }
        }

        impl ::core::convert::From<$name> for $raw {
            #[inline]
            fn from(value: $name) -> Self {
                value.raw()
            }
        }

        impl ::core::cmp::PartialEq for $name {
            #[inline]
            fn eq(&self, other: &Self) -> bool {
                self.raw() == other.raw()
            }
        }

        impl ::core::cmp::Eq for $name {}

        impl ::core::hash::Hash for $name {
            #[inline]
            fn hash<H: ::core::hash::Hasher>(&self, state: &mut H) {
                ::core::hash::Hash::hash(&self.raw(), state)
            }
        }
    };
}
