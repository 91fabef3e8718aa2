//! Emitting the owned header struct, its view and their methods.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;

use super::layout::{self, Slot};
use super::parse::{ChecksumScope, Field, Header, Kind};
use crate::doc::doc;

/// Method names the view or the owned struct define themselves; a field of
/// the same name would clash with them.
const RESERVED: &[&str] = &[
    "new",
    "parse",
    "emit",
    "header_len",
    "header_bytes",
    "header_bytes_mut",
    "options",
    "options_mut",
    "options_iter",
    "split",
    "into_payload",
    "payload",
    "payload_mut",
    "as_bytes",
    "as_bytes_mut",
    "into_inner",
    "to_header",
    "checksum_ok",
    "fill_checksum",
    "declared_len",
];

/// Checks what parsing could not (names, checksum count, layout, length
/// expression) and emits the owned struct and the view.
pub fn expand(h: &Header) -> syn::Result<TokenStream> {
    for f in &h.fields {
        if RESERVED.contains(&f.ident.to_string().as_str()) {
            return Err(syn::Error::new_spanned(
                &f.ident,
                format!(
                    "a header field cannot be named `{}`: the generated view has a method of that name",
                    f.ident
                ),
            ));
        }
    }
    let checksums: Vec<&Field> = h.fields.iter().filter(|f| f.checksum.is_some()).collect();
    if let [_, second, ..] = checksums.as_slice() {
        return Err(syn::Error::new_spanned(
            &second.checksum.as_ref().expect("checksum field").1,
            "a header has at most one #[checksum] field",
        ));
    }
    if let (Some(walker), None) = (&h.args.options, &h.args.length) {
        return Err(syn::Error::new_spanned(
            walker,
            "`options = ..` needs `length = ..`: a header without a declared length has \
             no option bytes to walk",
        ));
    }
    let (slots, len) = layout::layout(h)?;
    let length_uses = match &h.args.length {
        Some(expr) => Some(length_fields(h, expr)?),
        None => None,
    };
    let cx = Cx {
        h,
        slots,
        len,
        view: layout::view_ident(&h.ident),
        name_str: h.ident.to_string(),
        length_uses,
        checksum: checksums
            .first()
            .map(|f| (*f, f.checksum.as_ref().expect("checksum").0)),
        krate: crate::crate_or_default(h.args.krate.as_ref()),
        krate_doc: crate::crate_or_default(h.args.krate.as_ref())
            .to_string()
            .replace(' ', ""),
    };
    let owned = cx.owned();
    let view = cx.view();
    Ok(quote! {
        #owned
        #view
    })
}

/// The fields the length expression names; an error for unknown names or
/// fields that are not integers.
fn length_fields<'h>(h: &'h Header, expr: &syn::Expr) -> syn::Result<Vec<&'h Field>> {
    struct Names<'e> {
        found: Vec<&'e Ident>,
    }
    impl<'e> Visit<'e> for Names<'e> {
        fn visit_expr_path(&mut self, p: &'e syn::ExprPath) {
            if p.qself.is_none() {
                if let Some(ident) = p.path.get_ident() {
                    self.found.push(ident);
                }
            }
            syn::visit::visit_expr_path(self, p);
        }
    }
    let mut names = Names { found: Vec::new() };
    names.visit_expr(expr);
    let mut used: Vec<&Field> = Vec::new();
    for ident in names.found {
        // Constants (`MIN_WORDS`) pass through; lowercase names are fields.
        if ident
            .to_string()
            .starts_with(|c: char| c.is_ascii_uppercase())
        {
            continue;
        }
        let Some(f) = h.fields.iter().find(|f| f.ident == *ident) else {
            let known: Vec<String> = h
                .fields
                .iter()
                .filter(|f| matches!(f.kind, Kind::Uint(_) | Kind::Bool))
                .map(|f| format!("`{}`", f.ident))
                .collect();
            return Err(syn::Error::new_spanned(
                ident,
                format!(
                    "the length expression names `{ident}`, which is not a field of `{}`; \
                     integer fields: {}",
                    h.ident,
                    known.join(", ")
                ),
            ));
        };
        if let Kind::Uint(bits @ 33..) = f.kind {
            return Err(syn::Error::new_spanned(
                ident,
                format!(
                    "`{ident}` is {bits} bits wide; a length expression may only use fields \
                     of at most 32 bits, so that a hostile value cannot overflow it"
                ),
            ));
        }
        if !matches!(f.kind, Kind::Uint(_) | Kind::Bool) {
            return Err(syn::Error::new_spanned(
                ident,
                format!("the length expression can only use integer fields; `{ident}` is not one"),
            ));
        }
        if !used.iter().any(|u| u.ident == f.ident) {
            used.push(f);
        }
    }
    Ok(used)
}

/// Everything the emitters share.
struct Cx<'h> {
    h: &'h Header,
    slots: Vec<Slot>,
    len: usize,
    view: Ident,
    name_str: String,
    /// `Some` when the header has a dynamic length: the fields it uses.
    length_uses: Option<Vec<&'h Field>>,
    checksum: Option<(&'h Field, ChecksumScope)>,
    /// The path of the tpa crate in generated code (`::tpa` by default).
    krate: TokenStream,
    /// The same path as doc links write it.
    krate_doc: String,
}

/// The type a field has in the owned struct and as getter result.
fn value_type(f: &Field) -> TokenStream {
    match f.kind {
        Kind::Uint(bits) => {
            let t = Ident::new(&layout::uint_type(bits).to_string(), f.width_span);
            quote!(#t)
        }
        Kind::Bool | Kind::Address(_) | Kind::Typed(_) | Kind::Array(_) => {
            let ty = &f.ty;
            quote!(#ty)
        }
    }
}

/// "`u16`", or "`u16` little-endian", for docs.
fn wire_desc(f: &Field) -> String {
    let order = if f.little_endian {
        " little-endian"
    } else {
        ""
    };
    format!("`{}`{order}", wire_name(f))
}

/// The wire type as written in the declaration, for docs.
fn wire_name(f: &Field) -> String {
    match f.kind {
        Kind::Uint(bits) => format!("u{bits}"),
        Kind::Bool => "bool".into(),
        Kind::Array(n) => format!("[u8; {n}]"),
        Kind::Address(_) => match &f.ty {
            syn::Type::Path(p) => p.path.segments.last().expect("path").ident.to_string(),
            _ => "address".into(),
        },
        Kind::Typed(bits) => format!("u{bits}"),
    }
}

impl Cx<'_> {
    fn header_str(&self) -> &str {
        &self.name_str
    }

    /// `pub struct Ipv4 { .. }` and its `impl`.
    fn owned(&self) -> TokenStream {
        let h = self.h;
        let name = &h.ident;
        let vis = &h.vis;
        let attrs = &h.attrs;
        let view = &self.view;
        let len = proc_macro2::Literal::usize_unsuffixed(self.len);
        let fields = h.fields.iter().zip(&self.slots).map(|(f, slot)| {
            let fattrs = &f.attrs;
            let fvis = &f.vis;
            let ident = &f.ident;
            let ty = value_type(f);
            let wire = doc(&format!("\nWire: {}, {}.", wire_desc(f), slot.describe()));
            quote! {
                #(#fattrs)*
                #wire
                #fvis #ident: #ty
            }
        });
        let header_str = self.header_str();
        let krate = &self.krate;
        let krate_doc = &self.krate_doc;
        let error = quote!(#krate::header::HeaderError);
        let (header_len_doc, header_len_body) = match (&h.args.length, &self.length_uses) {
            (Some(expr), Some(uses)) => {
                let binds = uses.iter().map(|f| {
                    let id = &f.ident;
                    quote!(let #id = self.#id as usize;)
                });
                (
                    format!(
                        "The header length in bytes these field values declare: `{}`.",
                        quote!(#expr)
                    ),
                    quote! { #(#binds)* #expr },
                )
            }
            _ => (
                "The header length in bytes: always [`Self::LEN`].".to_owned(),
                quote!(Self::LEN),
            ),
        };
        let header_len_doc = doc(&header_len_doc);
        let length_check = if h.args.length.is_some() {
            quote! {
                if header_len < Self::LEN {
                    return ::core::result::Result::Err(#error::BadLength {
                        header: #header_str,
                        declared: header_len,
                        min: Self::LEN,
                    });
                }
                if buf.len() < header_len {
                    return ::core::result::Result::Err(#error::Truncated {
                        header: #header_str,
                        needed: header_len,
                        available: buf.len(),
                    });
                }
            }
        } else {
            quote!()
        };
        let emit_body = self.emit_body();
        let emit_doc_checksum = match self.checksum {
            Some((f, ChecksumScope::Header)) => format!(
                "\n\nThe `{}` field's value is ignored: `emit` computes the checksum over \
                 the `header_len()` bytes, so options (if any) must already be in `buf` \
                 after the fixed part.",
                f.ident
            ),
            Some((f, ChecksumScope::All)) => format!(
                "\n\nThe `{}` field's value is ignored: `emit` computes the checksum over \
                 all of `buf`, so the payload must already be in place and `buf` must end \
                 where the message ends.",
                f.ident
            ),
            None => String::new(),
        };
        let emit_doc = doc(&format!(
            "Writes the header's fields to the start of `buf` and returns the header \
             length.\n\nOnly the fixed part ([`Self::LEN`] bytes) is written; options \
             and payload bytes are left alone. Values too wide for their field are \
             masked to its width (debug builds assert instead).{emit_doc_checksum}\n\n\
             # Errors\n\n[`HeaderError::Truncated`]({krate_doc}::header::HeaderError::Truncated) \
             if `buf` is shorter than the header length{}.",
            if h.args.length.is_some() {
                format!(
                    "; [`HeaderError::BadLength`]({krate_doc}::header::HeaderError::BadLength) \
                     if the fields declare a length shorter than [`Self::LEN`]"
                )
            } else {
                String::new()
            }
        ));
        let owned_doc = doc(&format!(
            "\nDeclared with `#[header]`: [`{header_str}View`] reads and writes the same \
             fields in place in a byte buffer; [`parse`](Self::parse) and \
             [`emit`](Self::emit) copy them out of and into one."
        ));
        let zero_fields = h.fields.iter().map(|f| {
            let id = &f.ident;
            let ty = &f.ty;
            let zero = match f.kind {
                Kind::Uint(_) => quote!(0),
                Kind::Bool => quote!(false),
                Kind::Array(n) | Kind::Address(n) => {
                    let n = proc_macro2::Literal::usize_unsuffixed(n);
                    if matches!(f.kind, Kind::Array(_)) {
                        quote!([0; #n])
                    } else {
                        quote_spanned!(f.ty.span()=> <#ty as ::core::convert::From<[u8; #n]>>::from([0; #n]))
                    }
                }
                Kind::Typed(bits) => {
                    let raw_ty = layout::uint_type(bits);
                    quote_spanned!(f.ty.span()=> <#ty as ::core::convert::From<#raw_ty>>::from(0))
                }
            };
            quote!(#id: #zero)
        });
        let len_doc = doc(&format!(
            "Length in bytes of the fixed part of a `{header_str}` header (all declared \
             fields){}.",
            if h.args.length.is_some() {
                "; the smallest valid header length"
            } else {
                ""
            }
        ));
        quote! {
            #(#attrs)*
            #owned_doc
            #[derive(
                ::core::fmt::Debug,
                ::core::clone::Clone,
                ::core::marker::Copy,
                ::core::cmp::PartialEq,
                ::core::cmp::Eq,
                ::core::hash::Hash,
            )]
            #vis struct #name {
                #(#fields,)*
            }

            impl ::core::default::Default for #name {
                /// The header whose bytes are all zero.
                fn default() -> Self {
                    Self {
                        #(#zero_fields,)*
                    }
                }
            }

            impl #name {
                #len_doc
                pub const LEN: usize = #len;

                /// Reads a header from the start of `bytes` (a copy of its fields).
                ///
                /// # Errors
                ///
                /// As for the view's `new`: the buffer is too short or the header declares a bad length.
                #[inline]
                pub fn parse(bytes: &[u8]) -> ::core::result::Result<Self, #error> {
                    ::core::result::Result::Ok(#view::new(bytes)?.to_header())
                }

                #header_len_doc
                #[inline]
                pub fn header_len(&self) -> usize {
                    #header_len_body
                }

                #emit_doc
                #[inline]
                pub fn emit(&self, buf: &mut [u8]) -> ::core::result::Result<usize, #error> {
                    let header_len = self.header_len();
                    #length_check
                    #emit_body
                    ::core::result::Result::Ok(header_len)
                }
            }
        }
    }

    /// The body of `emit` after the length checks.
    ///
    /// With a checksum, the fixed part is assembled in a local array through
    /// the view's own setters (constant-index stores the compiler keeps in
    /// registers), checksummed there, and copied into `buf` once: the
    /// checksum never loads bytes just stored one field at a time into
    /// `buf` (a store-forwarding stall). Without one, nothing is read back,
    /// and the setters write into `buf` directly; a local copy would only
    /// add a round trip through the stack.
    fn emit_body(&self) -> TokenStream {
        let h = self.h;
        let view = &self.view;
        let header_str = self.header_str();
        let krate = &self.krate;
        let error = quote!(#krate::header::HeaderError);
        let dynamic = h.args.length.is_some();
        let Some((field, scope)) = self.checksum else {
            let sets = h.fields.iter().map(|f| {
                let id = &f.ident;
                let setter = format_ident!("set_{}", id);
                quote!(view.#setter(self.#id);)
            });
            let bytes = quote!(#krate::header::HeaderBytes::new(buf, #header_str)?);
            let view_init = if dynamic {
                quote!(#view { bytes: #bytes, header_len })
            } else {
                quote!(#view { bytes: #bytes })
            };
            return quote! {
                let mut view = #view_init;
                #(#sets)*
            };
        };
        let view_init = if dynamic {
            quote!(#view { bytes: #krate::header::HeaderBytes::from_array(&mut fixed), header_len: Self::LEN })
        } else {
            quote!(#view { bytes: #krate::header::HeaderBytes::from_array(&mut fixed) })
        };
        let sets = h.fields.iter().filter(|f| f.checksum.is_none()).map(|f| {
            let id = &f.ident;
            let setter = format_ident!("set_{}", id);
            quote!(view.#setter(self.#id);)
        });
        let sum = quote!(#krate::header::checksum);
        let setter = format_ident!("set_{}", field.ident);
        let (rest, checksum) = match (scope, dynamic) {
            (ChecksumScope::Header, false) => (
                quote!(_),
                quote! {
                    let checksum = #sum::checksum(view.as_bytes());
                    view.#setter(checksum);
                },
            ),
            (ChecksumScope::Header, true) => (
                quote!(rest),
                quote! {
                    let mut sum = #sum::Checksum::new();
                    sum.add_bytes(view.as_bytes());
                    sum.add_bytes(rest.get(..header_len - Self::LEN).unwrap_or_default());
                    view.#setter(sum.checksum());
                },
            ),
            (ChecksumScope::All, _) => (
                quote!(rest),
                quote! {
                    let mut sum = #sum::Checksum::new();
                    sum.add_bytes(view.as_bytes());
                    sum.add_bytes(rest);
                    view.#setter(sum.checksum());
                },
            ),
        };
        quote! {
            let available = buf.len();
            let ::core::option::Option::Some((out, #rest)) = buf.split_at_mut_checked(Self::LEN) else {
                return ::core::result::Result::Err(#error::Truncated {
                    header: #header_str,
                    needed: Self::LEN,
                    available,
                });
            };
            let mut fixed = [0u8; Self::LEN];
            let mut view = #view_init;
            #(#sets)*
            #checksum
            out.copy_from_slice(&fixed);
        }
    }

    /// The view struct and its two `impl` blocks.
    fn view(&self) -> TokenStream {
        let h = self.h;
        let name = &h.ident;
        let vis = &h.vis;
        let view = &self.view;
        let view_str = view.to_string();
        let header_str = self.header_str();
        let krate = &self.krate;
        let krate_doc = &self.krate_doc;
        let error = quote!(#krate::header::HeaderError);
        let dynamic = h.args.length.is_some();
        let b = Ident::new("b", Span::call_site());

        let view_doc = doc(&format!(
            "A zero-copy view of a [`{header_str}`] header at the start of a byte buffer.\n\n\
             [`new`](Self::new) checks the buffer length once{}; the accessors then \
             read and write the fixed part at constant offsets without further checks. \
             `B` is any [`Bytes`]({krate_doc}::header::Bytes) (e.g. `&[u8]`) for reading and any \
             [`BytesMut`]({krate_doc}::header::BytesMut) (e.g. `&mut [u8]`) for the setters. \
             The header/options/payload split is the one checked by `new`; nothing panics.",
            if dynamic {
                " (and the length the header declares)"
            } else {
                ""
            }
        ));
        let struct_fields = if dynamic {
            quote! { bytes: #krate::header::HeaderBytes<B, { #name::LEN }>, header_len: usize, }
        } else {
            quote! { bytes: #krate::header::HeaderBytes<B, { #name::LEN }>, }
        };

        let new_body = if dynamic {
            quote! {
                let available = bytes.as_bytes().len();
                let mut view = Self { bytes, header_len: #name::LEN };
                let declared = view.declared_len();
                if declared < #name::LEN {
                    return ::core::result::Result::Err(#error::BadLength {
                        header: #header_str,
                        declared,
                        min: #name::LEN,
                    });
                }
                if declared > available {
                    return ::core::result::Result::Err(#error::Truncated {
                        header: #header_str,
                        needed: declared,
                        available,
                    });
                }
                view.header_len = declared;
                ::core::result::Result::Ok(view)
            }
        } else {
            quote! { ::core::result::Result::Ok(Self { bytes }) }
        };
        let new_doc = doc(&format!(
            "Makes a view of the `{header_str}` header at the start of `bytes`.\n\n# Errors\n\n\
             [`HeaderError::Truncated`]({krate_doc}::header::HeaderError::Truncated) if `bytes` is \
             shorter than [`{header_str}::LEN`]{}.",
            if dynamic {
                format!(
                    " or than the length the header declares; \
                     [`HeaderError::BadLength`]({krate_doc}::header::HeaderError::BadLength) if \
                     the declared length is shorter than the fixed part"
                )
            } else {
                String::new()
            }
        ));

        let declared_len = match (&h.args.length, &self.length_uses) {
            (Some(expr), Some(uses)) => {
                let binds = uses.iter().map(|f| {
                    let id = &f.ident;
                    quote!(let #id = self.#id() as usize;)
                });
                let docs = doc(&format!(
                    "The header length `{}` declares, in bytes (not yet checked).",
                    quote!(#expr)
                ));
                quote! {
                    #docs
                    #[inline]
                    fn declared_len(&self) -> usize {
                        #(#binds)*
                        #expr
                    }
                }
            }
            _ => quote!(),
        };
        let header_len_body = if dynamic {
            quote!(self.header_len)
        } else {
            quote!(#name::LEN)
        };
        let header_len_doc = if dynamic {
            "The header length in bytes, as declared by the header and checked when the \
             view was made (a later setter call does not move it)."
        } else {
            "The header length in bytes: always the fixed length."
        };
        let header_len_doc = doc(header_len_doc);

        let mut getters = Vec::new();
        let mut setters = Vec::new();
        let mut debug_fields = Vec::new();
        let mut to_header_fields = Vec::new();
        for (f, slot) in h.fields.iter().zip(&self.slots) {
            getters.push(self.getter(f, *slot, &b));
            setters.push(self.setter(f, *slot, &b));
            let id = &f.ident;
            let id_str = id.to_string();
            debug_fields.push(quote!(.field(#id_str, &self.#id())));
            to_header_fields.push(quote!(#id: self.#id()));
        }

        let checksum_methods = self.checksum.map(|(f, scope)| {
            let setter = format_ident!("set_{}", f.ident);
            let (range, what) = match scope {
                ChecksumScope::Header => (quote!(self.header_bytes()), "the header bytes"),
                ChecksumScope::All => (
                    quote!(self.as_bytes()),
                    "the whole buffer (header and payload)",
                ),
            };
            let ok_doc = doc(&format!(
                "Whether the `{}` field holds the correct internet checksum of {what}.",
                f.ident
            ));
            let fill_doc = doc(&format!(
                "Computes the internet checksum of {what} and stores it in the `{}` field.",
                f.ident
            ));
            (
                quote! {
                    #ok_doc
                    #[inline]
                    pub fn checksum_ok(&self) -> bool {
                        #krate::header::checksum::checksum(#range) == 0
                    }
                },
                quote! {
                    #fill_doc
                    #[inline]
                    pub fn fill_checksum(&mut self) {
                        self.#setter(0);
                        let checksum = #krate::header::checksum::checksum(#range);
                        self.#setter(checksum);
                    }
                },
            )
        });
        let (checksum_ok, fill_checksum) = match checksum_methods {
            Some((a, b)) => (a, b),
            None => (quote!(), quote!()),
        };
        let options_iter = h.args.options.as_ref().map(|walker| {
            let docs = doc(&format!(
                "Walks the options (the bytes [`options`](Self::options) returns) with \
                 [`{}`], the walker this header's declaration names.",
                quote!(#walker).to_string().replace(' ', "")
            ));
            let hook = quote_spanned!(walker.span()=>
                <#walker<'_> as #krate::header::HeaderOptions<'_>>::from_bytes
            );
            quote! {
                #docs
                #[inline]
                pub fn options_iter(&self) -> #walker<'_> {
                    #hook(self.options())
                }
            }
        });
        let split_header = if dynamic {
            quote!(Self { bytes, header_len })
        } else {
            quote!(Self { bytes })
        };

        quote! {
            #view_doc
            #[derive(::core::clone::Clone, ::core::marker::Copy)]
            #vis struct #view<B> {
                #struct_fields
            }

            impl<B: #krate::header::Bytes> #view<B> {
                #new_doc
                #[inline]
                pub fn new(bytes: B) -> ::core::result::Result<Self, #error> {
                    let bytes = #krate::header::HeaderBytes::new(bytes, #header_str)?;
                    #new_body
                }

                #declared_len

                #header_len_doc
                #[inline]
                pub fn header_len(&self) -> usize {
                    #header_len_body
                }

                /// The header bytes: the fixed part and the options.
                #[inline]
                pub fn header_bytes(&self) -> &[u8] {
                    self.bytes.as_bytes().get(..self.header_len()).unwrap_or_default()
                }

                /// The bytes between the fixed part and the end of the header
                /// (empty when the header has no options).
                #[inline]
                pub fn options(&self) -> &[u8] {
                    self.bytes.as_bytes().get(#name::LEN..self.header_len()).unwrap_or_default()
                }

                /// The bytes after the header.
                #[inline]
                pub fn payload(&self) -> &[u8] {
                    self.bytes.as_bytes().get(self.header_len()..).unwrap_or_default()
                }

                /// The whole buffer: header and payload.
                #[inline]
                pub fn as_bytes(&self) -> &[u8] {
                    self.bytes.as_bytes()
                }

                /// Gives the buffer back.
                #[inline]
                pub fn into_inner(self) -> B {
                    self.bytes.into_inner()
                }

                /// Copies the fields into an owned header value.
                #[inline]
                pub fn to_header(&self) -> #name {
                    #name {
                        #(#to_header_fields,)*
                    }
                }

                #checksum_ok

                #options_iter

                #(#getters)*
            }

            impl<B: #krate::header::BytesMut> #view<B> {
                /// The header bytes, writable: the fixed part and the options.
                #[inline]
                pub fn header_bytes_mut(&mut self) -> &mut [u8] {
                    let end = self.header_len();
                    self.bytes.as_bytes_mut().get_mut(..end).unwrap_or_default()
                }

                /// The options, writable (empty when the header has none).
                #[inline]
                pub fn options_mut(&mut self) -> &mut [u8] {
                    let end = self.header_len();
                    self.bytes.as_bytes_mut().get_mut(#name::LEN..end).unwrap_or_default()
                }

                /// The bytes after the header, writable.
                #[inline]
                pub fn payload_mut(&mut self) -> &mut [u8] {
                    let start = self.header_len();
                    self.bytes.as_bytes_mut().get_mut(start..).unwrap_or_default()
                }

                /// The whole buffer, writable.
                #[inline]
                pub fn as_bytes_mut(&mut self) -> &mut [u8] {
                    self.bytes.as_bytes_mut()
                }

                #fill_checksum

                #(#setters)*
            }

            impl<B: #krate::header::SplitBytes> #view<B> {
                /// Cuts the buffer after the header: a view of the header
                /// alone (fixed part and options) and the payload, both
                /// borrowing as long as the original buffer (`&'a [u8]` or
                /// `&'a mut [u8]`), ready for the next layer's view.
                #[inline]
                pub fn split(self) -> (Self, B) {
                    let header_len = self.header_len();
                    let (bytes, payload) = self.bytes.split_at(header_len);
                    (#split_header, payload)
                }

                /// The bytes after the header, borrowing as long as the
                /// original buffer: `payload()` for the next layer, without
                /// the borrow of the view.
                #[inline]
                pub fn into_payload(self) -> B {
                    self.split().1
                }
            }

            impl<B: #krate::header::Bytes> ::core::fmt::Debug for #view<B> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#view_str)
                        #(#debug_fields)*
                        .field("header_len", &self.header_len())
                        .field("payload_len", &self.payload().len())
                        .finish()
                }
            }
        }
    }

    fn getter(&self, f: &Field, slot: Slot, b: &Ident) -> TokenStream {
        let id = &f.ident;
        let vis = &f.vis;
        let docs = f.attrs.iter().filter(|a| a.path().is_ident("doc"));
        let wire = doc(&format!("\nWire: {}, {}.", wire_desc(f), slot.describe()));
        let ty = value_type(f);
        let body = match f.kind {
            Kind::Uint(_) if f.little_endian => layout::read_le(b, slot),
            Kind::Uint(_) => layout::read_uint(b, slot),
            Kind::Bool => {
                let byte = proc_macro2::Literal::usize_unsuffixed(slot.first_byte());
                let bit = 7 - slot.offset % 8;
                let m: TokenStream = format!("{:#04x}", 1u8 << bit).parse().expect("literal");
                quote!(#b[#byte] & #m != 0)
            }
            Kind::Array(_) => {
                let copy = layout::read_array(b, slot);
                quote!(#copy bytes)
            }
            Kind::Address(n) => {
                let copy = layout::read_array(b, slot);
                let n = proc_macro2::Literal::usize_unsuffixed(n);
                let from =
                    quote_spanned!(f.ty.span()=> <#ty as ::core::convert::From<[u8; #n]>>::from);
                quote!(#copy #from(bytes))
            }
            Kind::Typed(bits) => {
                let raw = layout::read_uint(b, slot);
                let raw_ty = Ident::new(&layout::uint_type(bits).to_string(), f.width_span);
                let from =
                    quote_spanned!(f.ty.span()=> <#ty as ::core::convert::From<#raw_ty>>::from);
                quote!(#from(#raw))
            }
        };
        quote! {
            #(#docs)*
            #wire
            #[inline]
            #vis fn #id(&self) -> #ty {
                let #b = self.bytes.fixed();
                #body
            }
        }
    }

    fn setter(&self, f: &Field, slot: Slot, b: &Ident) -> TokenStream {
        let id = &f.ident;
        let vis = &f.vis;
        let setter = format_ident!("set_{}", id);
        let ty = value_type(f);
        let value = Ident::new("value", Span::call_site());
        let name = &self.name_str;
        let (docs, body) = match f.kind {
            Kind::Uint(bits) | Kind::Typed(bits) => {
                let raw_ty = layout::uint_type(bits);
                let convert = if matches!(f.kind, Kind::Typed(_)) {
                    let ty = &f.ty;
                    let into =
                        quote_spanned!(f.ty.span()=> <#ty as ::core::convert::Into<#raw_ty>>::into);
                    quote!(let #value: #raw_ty = #into(#value);)
                } else {
                    quote!()
                };
                let (docs, narrow) = match layout::narrow_mask(bits) {
                    Some(m) => {
                        let msg =
                            format!("{name}::{id} is {bits} bits wide; {{{value}}} does not fit");
                        (
                            format!(
                                "Sets the `{id}` field. Only the low {bits} bits of the value \
                                 are stored (debug builds assert that it fits)."
                            ),
                            quote! {
                                ::core::debug_assert!(#value <= #m, #msg);
                                let #value = #value & #m;
                            },
                        )
                    }
                    None => (format!("Sets the `{id}` field."), quote!()),
                };
                let write = if f.little_endian {
                    layout::write_le(b, slot, &value)
                } else {
                    layout::write_uint(b, slot, &value)
                };
                (
                    docs,
                    quote! {
                        #convert
                        #narrow
                        let #b = self.bytes.fixed_mut();
                        #write
                    },
                )
            }
            Kind::Bool => {
                let byte = proc_macro2::Literal::usize_unsuffixed(slot.first_byte());
                let bit = 7 - slot.offset % 8;
                let m: TokenStream = format!("{:#04x}", 1u8 << bit).parse().expect("literal");
                (
                    format!("Sets the `{id}` flag."),
                    quote! {
                        let #b = self.bytes.fixed_mut();
                        if #value {
                            #b[#byte] |= #m;
                        } else {
                            #b[#byte] &= !#m;
                        }
                    },
                )
            }
            Kind::Array(_) => {
                let write = layout::write_array(b, slot, &quote!(#value));
                (
                    format!("Sets the `{id}` field."),
                    quote! {
                        let #b = self.bytes.fixed_mut();
                        #write
                    },
                )
            }
            Kind::Address(_) => {
                let write = layout::write_array(b, slot, &quote!(#value.octets()));
                (
                    format!("Sets the `{id}` field."),
                    quote! {
                        let #b = self.bytes.fixed_mut();
                        #write
                    },
                )
            }
        };
        let docs = doc(&docs);
        quote! {
            #docs
            #[inline]
            #vis fn #setter(&mut self, #value: #ty) {
                #body
            }
        }
    }
}
