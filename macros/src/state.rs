//! `#[derive(State)]`: a struct of distinct part types lends its fields by
//! type, alone (`Part<T>`) and two or three at once (`Parts<(T, U)>`,
//! `Parts<(T, U, V)>`), each pair or triple in every order; its `#[polled]`
//! fields' work runs once per loop iteration (`PolledState`).

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
    let polled: Vec<&Type> = named
        .named
        .iter()
        .filter(|f| f.attrs.iter().any(|a| a.path().is_ident("polled")))
        .map(|f| &f.ty)
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
    out.extend(polled_state(&krate, &input, &polled));
    Ok(out)
}

/// `PolledState` for every buffer type: each `#[polled]` part's work, in
/// field order; and `PollsPart` for each of those parts.
fn polled_state(krate: &TokenStream, input: &DeriveInput, polled: &[&Type]) -> TokenStream {
    let name = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let mut generics = input.generics.clone();
    generics
        .params
        .push(syn::parse_quote!(__TpaBuf: #krate::buf::PacketBuf));
    generics
        .make_where_clause()
        .predicates
        .extend(polled.iter().map(|ty| -> syn::WherePredicate {
            syn::parse_quote!(#ty: #krate::state::Polled<__TpaBuf, #name #ty_generics>)
        }));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let (marker_generics, _, marker_where) = input.generics.split_for_impl();
    let mut out = quote! {
        impl #impl_generics #krate::state::PolledState<__TpaBuf> for #name #ty_generics #where_clause {
            #[inline(always)]
            fn poll(cx: &mut #krate::stage::Cx<'_, __TpaBuf, Self>) {
                #(<#polled as #krate::state::Polled<__TpaBuf, Self>>::poll(cx);)*
            }
            #[inline(always)]
            fn fire_timers(cx: &mut #krate::stage::Cx<'_, __TpaBuf, Self>) -> usize {
                0 #(+ <#polled as #krate::state::Polled<__TpaBuf, Self>>::fire_timers(cx))*
            }
            #[inline(always)]
            fn next_deadline(&self) -> ::core::option::Option<u64> {
                let deadline = ::core::option::Option::None;
                #(let deadline = #krate::stage::earliest(
                    deadline,
                    <#polled as #krate::state::Polled<__TpaBuf, Self>>::next_deadline(self),
                );)*
                deadline
            }
        }
    };
    for ty in polled {
        out.extend(quote! {
            impl #marker_generics #krate::state::PollsPart<#ty> for #name #ty_generics #marker_where {}
        });
    }
    out
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
