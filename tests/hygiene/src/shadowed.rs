//! Declarations under hostile names: no prelude, and look-alikes of the
//! core items generated code uses. Nothing here is used by hand; the items
//! exist to be picked up by mistake.

#![allow(dead_code, non_snake_case, unused_macros)]

use ::core::net::Ipv4Addr;
use ::my_tpa::wire::MacAddr;

/// Not the `core` crate.
pub mod core {}
/// Not the `std` crate.
pub mod std {}
/// Not `my_tpa` either: the real one is `::my_tpa`.
pub mod my_tpa {}
/// Not the `tpa` crate (which is not a dependency under that name).
pub mod tpa {}

/// Not `core::option::Option`.
pub struct Option;
/// Not `core::result::Result`.
pub struct Result;
/// Not `Option::Some`.
pub fn Some() {}
/// Not `Option::None`.
pub fn None() {}
/// Not `Result::Ok`.
pub fn Ok() {}
/// Not `Result::Err`.
pub fn Err() {}
/// Not `core::convert::From`.
pub trait From {}
/// Not `core::convert::Into`.
pub trait Into {}
/// Not `core::default::Default`.
pub trait Default {}
/// Not `core::fmt::Debug`.
pub trait Debug {}
/// Not `core::clone::Clone`.
pub trait Clone {}
/// Not `core::marker::Copy`.
pub trait Copy {}
/// Not `core::cmp::PartialEq`.
pub trait PartialEq {}
/// Not `core::cmp::Eq`.
pub trait Eq {}
/// Not `core::hash::Hash`.
pub trait Hash {}
/// Not `core::iter::Iterator`.
pub trait Iterator {}
/// Not `alloc::vec::Vec`.
pub struct Vec;
/// Not `alloc::string::String`.
pub struct String;
/// Not `core::marker::Sized`.
pub trait Sized {}

/// Not the `debug_assert!` of core.
macro_rules! debug_assert {
    ($($t:tt)*) => {
        ::core::compile_error!("generated code called a `debug_assert!` it did not name by path")
    };
}
/// Not the `stringify!` of core.
macro_rules! stringify {
    ($($t:tt)*) => {
        ::core::compile_error!("generated code called a `stringify!` it did not name by path")
    };
}
/// Not the `assert!` of core.
macro_rules! assert {
    ($($t:tt)*) => {
        ::core::compile_error!("generated code called an `assert!` it did not name by path")
    };
}
/// Not the `panic!` of core.
macro_rules! panic {
    ($($t:tt)*) => {
        ::core::compile_error!("generated code called a `panic!` it did not name by path")
    };
}

::my_tpa::field_enum! {
    /// What a [`Probe`] carries, a typed field.
    pub enum ProbeKind: u8 {
        /// A question.
        Request = 1,
        /// An answer.
        Reply = 2,
    }
}

/// A made-up header with every kind of field: bit fields across bytes, a
/// flag, a typed field, addresses, bytes, a little-endian field and a
/// checksum over the whole message.
#[::my_tpa::header(crate = ::my_tpa)]
pub struct Probe {
    /// Always 1.
    pub version: u3,
    /// Crosses from byte 0 into byte 1.
    pub class: u9,
    /// Set on the last probe of a run.
    pub last: bool,
    /// Reserved, zero.
    pub reserved: u3,
    /// What this probe is.
    #[field(u8)]
    pub kind: ProbeKind,
    /// Hop count.
    pub hops: u8,
    /// Internet checksum of the whole message.
    #[checksum(all)]
    pub checksum: u16,
    /// A sender-local cookie, little-endian.
    #[field(le)]
    pub cookie: u32,
    /// Where the probe is from.
    pub src: Ipv4Addr,
    /// The sender's MAC address.
    pub mac: MacAddr,
    /// Opaque bytes.
    pub tag: [u8; 2],
}

/// Walks [`Options`]' option bytes: each byte is one option kind.
pub struct OptionKinds<'a> {
    /// The bytes not walked yet.
    pub rest: &'a [u8],
}

impl<'a> ::my_tpa::header::HeaderOptions<'a> for OptionKinds<'a> {
    fn from_bytes(bytes: &'a [u8]) -> Self {
        OptionKinds { rest: bytes }
    }
}

/// A header with a dynamic length over a field, an options walker and a
/// checksum over the header, with tpa named by a relative path (resolved
/// where the struct is declared).
#[::my_tpa::header(crate = my_tpa_path::tpa, length = words * 4, options = OptionKinds)]
pub struct Options {
    /// Header length in 32-bit words.
    pub words: u4,
    /// Reserved, zero.
    pub reserved: u4,
    /// A value.
    pub value: u8,
    /// Checksum of the header (fixed part and options).
    #[checksum]
    pub checksum: u16,
}

/// The tpa crate reached through a module, as a crate that re-exports it
/// would.
pub mod my_tpa_path {
    pub use ::my_tpa as tpa;
}

/// Hands frames that start with `0xff` to the host, drops empty ones (its
/// own reason, `empty`) and passes the rest on.
pub struct Split;

impl<B: ::my_tpa::buf::PacketBuf> ::my_tpa::stage::Stage<B> for Split {
    type In = B;
    type Out = B;
    const CUSTOM_REASONS: &'static [&'static str] = &["empty"];
    fn process(
        &mut self,
        frame: B,
        _cx: &mut ::my_tpa::stage::Cx<'_, B>,
    ) -> ::my_tpa::stage::Verdict<B> {
        use ::my_tpa::stage::{Reason, Verdict};
        match frame.data().first() {
            ::core::option::Option::Some(0xff) => Verdict::ToHost(frame),
            ::core::option::Option::Some(_) => Verdict::Pass(frame),
            ::core::option::Option::None => Verdict::Drop(Reason::custom(0)),
        }
    }
}

/// Sends every frame back where it came from.
pub struct Echo;

impl<B: ::my_tpa::buf::PacketBuf> ::my_tpa::stage::Stage<B> for Echo {
    type In = B;
    type Out = ::core::convert::Infallible;
    fn process(
        &mut self,
        frame: B,
        _cx: &mut ::my_tpa::stage::Cx<'_, B>,
    ) -> ::my_tpa::stage::Verdict<Self::Out, B> {
        ::my_tpa::stage::Verdict::Transmit(frame)
    }
}

/// Counts the frames crossing the port each way.
#[derive(::core::default::Default)]
pub struct Count {
    /// Frames received.
    pub rx: u64,
    /// Frames transmitted.
    pub tx: u64,
}

impl<B> ::my_tpa::pipeline::Observer<B> for Count {
    fn on_rx(&mut self, _frame: &B, _now_ns: u64) {
        self.rx += 1;
    }
    fn on_tx(&mut self, _frame: &B, _now_ns: u64) {
        self.tx += 1;
    }
}

/// A pipeline with every kind of field: a port, a host, an observer and two
/// stages, with a burst size.
#[::my_tpa::pipeline(burst = 4, crate = ::my_tpa)]
pub struct Reflect {
    #[port]
    wire: ::my_tpa::port::memory::MemoryPort,
    #[host]
    host: ::my_tpa::port::memory::MemoryPort,
    #[observer]
    count: Count,
    split: Split,
    echo: Echo,
}

impl Reflect {
    /// The observer's counts: (received, transmitted).
    pub fn counts(&self) -> (u64, u64) {
        (self.count.rx, self.count.tx)
    }
}

/// A pipeline generic over its port, with tpa named by a relative path and
/// a stage named like `run_once_at`'s parameter (the fields are bound by
/// name in that method).
#[::my_tpa::pipeline(crate = my_tpa_path::tpa)]
pub struct Plain<P: ::my_tpa::port::Port> {
    port: P,
    now_ns: Echo,
}
