//! Procedural macros of tpa.

#![warn(missing_docs)]

use proc_macro::TokenStream;

mod doc;
#[cfg(test)]
mod golden;
mod header;
mod pipeline;
mod state;

/// The path after `crate =` in either macro's arguments: where the `tpa`
/// crate is when the dependency is renamed (`my_tpa`, `::my_tpa`,
/// `crate::reexported::tpa`).
fn crate_path(value: syn::Expr) -> syn::Result<syn::Path> {
    match value {
        syn::Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Ok(p.path),
        other => Err(syn::Error::new_spanned(
            other,
            "`crate =` takes the path of the tpa crate, e.g. `crate = my_tpa` when Cargo.toml \
             says `my_tpa = { package = \"tpa\", .. }`",
        )),
    }
}

/// `::tpa`, or the path given with `crate = ..`.
fn crate_or_default(krate: Option<&syn::Path>) -> proc_macro2::TokenStream {
    match krate {
        Some(path) => quote::ToTokens::to_token_stream(path),
        None => quote::quote!(::tpa),
    }
}

/// Declares a protocol header: a struct of bit-width fields becomes an owned
/// value type and a zero-copy view.
///
/// ```text
/// #[header(length = ihl * 4)]   // optional: dynamic length in bytes over field names
/// pub struct Ipv4 {
///     pub version: u4,          // u1..u64: big-endian bit fields, may cross bytes
///     pub ihl: u4,
///     ...
///     #[field(u8)]              // typed: T: From<u8> + Into<u8> (see tpa::field_enum!)
///     pub protocol: IpProtocol,
///     #[checksum]               // internet checksum of the header; #[checksum(all)]: whole buffer
///     pub checksum: u16,
///     pub src: Ipv4Addr,        // also bool, [u8; N], Ipv6Addr, MacAddr (byte-aligned)
///     pub dst: Ipv4Addr,
/// }
/// ```
///
/// generates `struct Ipv4` (the owned value: `LEN`, `parse`, `emit`,
/// `header_len`, `Default`) and `struct Ipv4View<B>` over any
/// `tpa::header::Bytes` buffer (`new`, a getter and a `set_` setter per field,
/// `header_len`, `options`, `payload`, `to_header`, `checksum_ok`,
/// `fill_checksum`, …). Bad declarations are compile errors pointing at the
/// field. The programming guide (doc/guide/headers.md) has the details.
/// Also: `#[header(length = .., options = Walker)]` adds `options_iter()`,
/// `#[field(le)]` marks a little-endian `u16`/`u32`/`u64` field, and
/// `#[header(crate = my_tpa)]` names the tpa crate where the dependency is
/// renamed (generated code names `::tpa` otherwise, and `::core` for core
/// items, so shadowed prelude names do not matter).
#[proc_macro_attribute]
pub fn header(attr: TokenStream, item: TokenStream) -> TokenStream {
    header::header(attr.into(), item.into()).into()
}

/// Composes a port and stages into a run-to-completion loop.
///
/// `#[pipeline]` or `#[pipeline(burst = N)]` on a struct with named fields
/// (`crate = my_tpa` names the tpa crate where the dependency is renamed):
/// the port (marked `#[port]`, or the field called `port`), an optional
/// `#[host]` sink, an optional `#[observer]` field that sees the frames
/// crossing the port, then the stages in chain order. Generates `new`,
/// `run_once`, `run_once_at`, `run`, `stats` and `STAGES`; a chain whose
/// types do not line up is a compile error naming both stages. See the
/// `tpa::pipeline` module and the programming guide (doc/guide/pipelines.md).
#[proc_macro_attribute]
pub fn pipeline(attr: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::pipeline(attr.into(), item.into()).into()
}

/// Makes a struct a pipeline state: its fields become parts that stages
/// borrow by type, one (`tpa::state::Part<T>`) or two or three at once
/// (`tpa::state::Parts<(T, U)>`, `Parts<(T, U, V)>`), in any order.
///
/// Every field needs a type of its own (two fields of one type are a
/// compile error naming both); `#[state(crate = my_tpa)]` names the tpa
/// crate where the dependency is renamed. A field marked `#[polled]` has
/// work of its own once per loop iteration (`tpa::state::Polled`: TCP's
/// sockets flush their output and fire their timers), which the generated
/// loop runs once, after the stages' (`tpa::state::PolledState`). See
/// `tpa::state`.
#[proc_macro_derive(State, attributes(state, polled))]
pub fn derive_state(item: TokenStream) -> TokenStream {
    state::derive(item.into()).into()
}
