//! `#[derive(State)]`: a struct of distinct part types lends its fields by
//! type, alone (`Part<T>`) and two or three at once (`Parts<(T, U)>`,
//! `Parts<(T, U, V)>`), each pair or triple in every order.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

/// Fields past which the three-at-once impls are not generated (their
/// number grows as n³: 12 fields already make 1320 of them).
const MAX_FIELDS_FOR_TRIPLES: usize = 12;

pub fn derive(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(out) => out,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let krate = crate_option(&input)?;
    let krate = crate::crate_or_default(krate.as_ref());
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(State)] goes on a struct whose fields are the state's parts",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new(
            data.fields
                .span()
                .join(input.ident.span())
                .unwrap_or(input.ident.span()),
            "#[derive(State)] needs named fields, one per part",
        ));
    };
    let fields: Vec<(&Ident, &Type)> = named
        .named
        .iter()
        .filter_map(|f| Some((f.ident.as_ref()?, &f.ty)))
        .collect();

    // Two fields of the same type would make `Part<T>` ambiguous.
    let mut errors: Option<syn::Error> = None;
    for (i, (ident, ty)) in fields.iter().enumerate() {
        let key = quote!(#ty).to_string();
        if let Some((first, _)) = fields[..i]
            .iter()
            .find(|(_, t)| quote!(#t).to_string() == key)
        {
            let e = syn::Error::new(
                ty.span(),
                format!(
                    "`{ident}` has the same type as `{first}`: the parts of a state are found by \
                     type, so each field needs a type of its own (wrap one in a newtype)"
                ),
            );
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }

    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut out = TokenStream::new();
    for (ident, ty) in &fields {
        out.extend(quote! {
            impl #impl_generics #krate::state::Part<#ty> for #name #ty_generics #where_clause {
                #[inline(always)]
                fn part(&self) -> &#ty {
                    &self.#ident
                }
                #[inline(always)]
                fn part_mut(&mut self) -> &mut #ty {
                    &mut self.#ident
                }
            }
        });
    }
    let n = fields.len();
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            let ((a, ta), (b, tb)) = (fields[i], fields[j]);
            out.extend(quote! {
                impl #impl_generics #krate::state::Parts<(#ta, #tb)> for #name #ty_generics #where_clause {
                    #[inline(always)]
                    fn parts(&mut self) -> (&mut #ta, &mut #tb) {
                        (&mut self.#a, &mut self.#b)
                    }
                }
            });
            if n > MAX_FIELDS_FOR_TRIPLES {
                continue;
            }
            for k in (0..n).filter(|&k| k != i && k != j) {
                let (c, tc) = fields[k];
                out.extend(quote! {
                    impl #impl_generics #krate::state::Parts<(#ta, #tb, #tc)> for #name #ty_generics #where_clause {
                        #[inline(always)]
                        fn parts(&mut self) -> (&mut #ta, &mut #tb, &mut #tc) {
                            (&mut self.#a, &mut self.#b, &mut self.#c)
                        }
                    }
                });
            }
        }
    }
    Ok(out)
}

/// `#[state(crate = path)]`, if given.
fn crate_option(input: &DeriveInput) -> syn::Result<Option<syn::Path>> {
    let mut krate = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("state")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let value: syn::Expr = meta.value()?.parse()?;
                krate = Some(crate::crate_path(value)?);
                Ok(())
            } else {
                Err(meta.error("unknown `state` option: the one option is `crate = path`"))
            }
        })?;
    }
    Ok(krate)
}
