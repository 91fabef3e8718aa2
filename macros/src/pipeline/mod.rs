//! `#[pipeline]`: a struct naming a port and stages becomes a
//! run-to-completion loop. Parsing and checks are in [`parse`], the generated
//! code in [`expand`]; the runtime it calls is `tpa::pipeline`.

mod expand;
mod parse;

use proc_macro2::TokenStream;

/// Expands `#[pipeline(attr)] item`, or returns the errors as
/// `compile_error!` invocations.
pub fn pipeline(attr: TokenStream, item: TokenStream) -> TokenStream {
    match parse::Pipeline::parse(attr, item.clone()) {
        Ok(p) => expand::expand(&p),
        Err(e) => {
            // The struct is still emitted (markers removed), so that code
            // using it does not add errors of its own.
            let mut out = e.to_compile_error();
            out.extend(parse::fallback(item));
            out
        }
    }
}
