//! Procedural macros of tpa.

use proc_macro::TokenStream;

/// Declares a protocol header; see the `tpa::header` module.
#[proc_macro_attribute]
pub fn header(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Composes a port and stages into a run-to-completion loop.
#[proc_macro_attribute]
pub fn pipeline(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
