//! The protocol headers tpa speaks, each in its own module and each declared
//! once with `#[header]`.

mod mac;

pub use mac::MacAddr;
