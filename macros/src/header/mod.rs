//! `#[header]`: a protocol header declared as a struct of bit-width fields,
//! expanded into an owned value type and a zero-copy view.
//!
//! - [`parse`] reads the declaration (arguments, field types and roles);
//! - [`layout`] places the fields and writes the constant-offset accessors;
//! - [`expand`] emits the owned struct, the view and their methods.

mod expand;
mod layout;
mod parse;

use proc_macro2::TokenStream;

/// Expands `#[header(attr)] item`; errors become `compile_error!`s.
pub fn header(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_header(attr, item) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn try_header(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: parse::HeaderArgs = syn::parse2(attr)?;
    let item: syn::Item = syn::parse2(item)?;
    let item = match item {
        syn::Item::Struct(item) => item,
        syn::Item::Enum(e) => return Err(not_a_struct(e.enum_token)),
        syn::Item::Union(u) => return Err(not_a_struct(u.union_token)),
        other => return Err(not_a_struct(other)),
    };
    let header = parse::header(args, item)?;
    expand::expand(&header)
}

fn not_a_struct(tokens: impl quote::ToTokens) -> syn::Error {
    syn::Error::new_spanned(tokens, "#[header] applies to a struct with named fields")
}
