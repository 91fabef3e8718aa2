//! Reading a `#[header]` declaration: the attribute arguments and each
//! field's type, width and role.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Fields, Ident, ItemStruct, Token, Type, Visibility};

/// The arguments of `#[header(...)]`.
#[derive(Default)]
pub struct HeaderArgs {
    /// `length = <expr>`: the header length in bytes, over field names.
    pub length: Option<Expr>,
    /// `options = <type>`: the walker over the option bytes, named without
    /// its lifetime (it implements `HeaderOptions<'a>`).
    pub options: Option<syn::Path>,
    /// `crate = <path>`: where the `tpa` crate is, for a crate that renames
    /// the dependency (`::tpa` when not given).
    pub krate: Option<syn::Path>,
}

impl Parse for HeaderArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = HeaderArgs::default();
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            if pair.path.is_ident("length") {
                if args.length.is_some() {
                    return Err(syn::Error::new_spanned(&pair.path, "`length` given twice"));
                }
                args.length = Some(pair.value);
            } else if pair.path.is_ident("options") {
                if args.options.is_some() {
                    return Err(syn::Error::new_spanned(&pair.path, "`options` given twice"));
                }
                args.options = Some(options_type(pair.value)?);
            } else if pair.path.is_ident("crate") {
                if args.krate.is_some() {
                    return Err(syn::Error::new_spanned(&pair.path, "`crate` given twice"));
                }
                args.krate = Some(crate::crate_path(pair.value)?);
            } else {
                return Err(syn::Error::new_spanned(
                    &pair.path,
                    "unknown #[header] argument; expected `length = <expression in bytes>`, \
                     `options = <option walker type>` or `crate = <path to tpa>`",
                ));
            }
        }
        Ok(args)
    }
}

/// The type after `options =`: a plain path whose last segment has no
/// generic arguments (the lifetime is added by the expansion).
fn options_type(value: Expr) -> syn::Result<syn::Path> {
    if let Expr::Path(p) = &value {
        let plain = p.qself.is_none()
            && p.attrs.is_empty()
            && p.path.segments.iter().all(|s| s.arguments.is_none());
        if plain {
            return Ok(p.path.clone());
        }
    }
    Err(syn::Error::new_spanned(
        value,
        "`options =` names the type that walks the option bytes, without its lifetime \
         (e.g. `options = TcpOptions`); it must implement `tpa::header::HeaderOptions<'a>`",
    ))
}

/// What a field holds, as far as layout and conversions go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `uN`: an unsigned integer of `N` bits (1..=64), big-endian.
    Uint(u32),
    /// `bool`: one bit.
    Bool,
    /// `[u8; N]`: `N` bytes, byte-aligned.
    Array(usize),
    /// `Ipv4Addr`, `Ipv6Addr`, `MacAddr`: `N` bytes, byte-aligned, converted
    /// with `From<[u8; N]>` and `.octets()`.
    Address(usize),
    /// `#[field(uN)] T`: an `N`-bit integer converted with `From`/`Into`.
    Typed(u32),
}

impl Kind {
    /// Width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Kind::Uint(n) | Kind::Typed(n) => n,
            Kind::Bool => 1,
            Kind::Array(n) | Kind::Address(n) => n as u32 * 8,
        }
    }
}

/// What `#[checksum]` covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChecksumScope {
    /// `#[checksum]`: the header (`header_len()` bytes).
    Header,
    /// `#[checksum(all)]`: the whole buffer, header and payload.
    All,
}

/// One declared field.
pub struct Field {
    /// Attributes passed through (docs and the like).
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    /// The declared type (for `#[field(uN)] T`, `T`).
    pub ty: Type,
    pub kind: Kind,
    /// The span of the width (`u4`, or the `uN` inside `#[field(uN)]`).
    pub width_span: Span,
    /// The type that gives the width (the field type, or the `uN` inside
    /// `#[field(uN)]`), for error spans.
    pub width_ty: Type,
    pub checksum: Option<(ChecksumScope, Attribute)>,
    /// `#[field(le)]`: a whole-byte `u16`/`u32`/`u64` stored little-endian.
    pub little_endian: bool,
}

/// A whole declaration.
pub struct Header {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    pub fields: Vec<Field>,
    pub args: HeaderArgs,
}

/// Parses the struct the attribute is on.
pub fn header(args: HeaderArgs, item: ItemStruct) -> syn::Result<Header> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "a #[header] struct cannot be generic: its layout is fixed bytes on the wire",
        ));
    }
    let named = match item.fields {
        Fields::Named(named) => named,
        Fields::Unnamed(_) | Fields::Unit => {
            return Err(syn::Error::new(
                item.ident.span(),
                "#[header] needs a struct with named fields, one per header field",
            ))
        }
    };
    if named.named.is_empty() {
        return Err(syn::Error::new(
            item.ident.span(),
            "a #[header] struct needs at least one field",
        ));
    }
    let mut errors: Option<syn::Error> = None;
    let mut fields = Vec::new();
    for f in named.named {
        match field(f) {
            Ok(f) => fields.push(f),
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(Header {
        attrs: item.attrs,
        vis: item.vis,
        ident: item.ident,
        fields,
        args,
    })
}

fn field(f: syn::Field) -> syn::Result<Field> {
    let ident = f.ident.clone().expect("named field");
    let mut attrs = Vec::new();
    let mut typed: Option<(u32, Type)> = None;
    let mut checksum = None;
    let mut little_endian = None;
    for attr in f.attrs {
        if attr.path().is_ident("field") {
            let width: Type = attr.parse_args()?;
            if matches!(&width, Type::Path(p) if p.path.is_ident("le")) {
                little_endian = Some(width);
                continue;
            }
            let bits = uint_width(&width)?.ok_or_else(|| {
                syn::Error::new_spanned(
                    &width,
                    "#[field(..)] takes the wire width as `uN`, 1 <= N <= 64, e.g. #[field(u8)], \
                     or `le` for a little-endian `u16`/`u32`/`u64`",
                )
            })?;
            typed = Some((bits, width));
        } else if attr.path().is_ident("checksum") {
            let scope = match &attr.meta {
                syn::Meta::Path(_) => ChecksumScope::Header,
                _ => {
                    let word: Ident = attr.parse_args()?;
                    if word == "all" {
                        ChecksumScope::All
                    } else {
                        return Err(syn::Error::new_spanned(
                            word,
                            "expected #[checksum] (over the header) or #[checksum(all)] (over the whole buffer)",
                        ));
                    }
                }
            };
            checksum = Some((scope, attr));
        } else {
            attrs.push(attr);
        }
    }
    let (kind, width_ty) = match typed {
        Some((bits, width)) => (Kind::Typed(bits), width),
        None => (kind_of(&f.ty)?, f.ty.clone()),
    };
    if checksum.is_some() && kind != Kind::Uint(16) {
        return Err(syn::Error::new_spanned(
            &width_ty,
            format!(
                "#[checksum] field `{ident}` must be a `u16` (the internet checksum is 16 bits)"
            ),
        ));
    }
    if let Some(le) = &little_endian {
        if !matches!(kind, Kind::Uint(16 | 32 | 64)) {
            return Err(syn::Error::new_spanned(
                le,
                format!(
                    "#[field(le)] applies to `u16`, `u32` and `u64` fields (whole bytes in \
                     little-endian order); `{ident}` is not one"
                ),
            ));
        }
        if checksum.is_some() {
            return Err(syn::Error::new_spanned(
                le,
                "a #[checksum] field holds the internet checksum, which is big-endian; \
                 drop #[field(le)]",
            ));
        }
    }
    Ok(Field {
        attrs,
        vis: f.vis,
        ident,
        ty: f.ty,
        kind,
        width_span: width_ty.span(),
        width_ty,
        checksum,
        little_endian: little_endian.is_some(),
    })
}

/// `uN` → `Some(N)`; an error for `u0` or `u65` and wider; `None` for any
/// other type.
fn uint_width(ty: &Type) -> syn::Result<Option<u32>> {
    let Type::Path(p) = ty else { return Ok(None) };
    let Some(ident) = p.path.get_ident() else {
        return Ok(None);
    };
    let name = ident.to_string();
    let Some(digits) = name.strip_prefix('u') else {
        return Ok(None);
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match digits.parse::<u32>() {
        Ok(n @ 1..=64) => Ok(Some(n)),
        _ => Err(syn::Error::new_spanned(
            ident,
            format!("`{name}`: a header field is 1 to 64 bits wide (`u1` ..= `u64`)"),
        )),
    }
}

fn kind_of(ty: &Type) -> syn::Result<Kind> {
    if let Some(bits) = uint_width(ty)? {
        return Ok(Kind::Uint(bits));
    }
    match ty {
        Type::Path(p) if p.path.is_ident("bool") => return Ok(Kind::Bool),
        Type::Path(p) if p.qself.is_none() => {
            if let Some(last) = p.path.segments.last() {
                if last.arguments.is_none() {
                    match last.ident.to_string().as_str() {
                        "Ipv4Addr" => return Ok(Kind::Address(4)),
                        "Ipv6Addr" => return Ok(Kind::Address(16)),
                        "MacAddr" => return Ok(Kind::Address(6)),
                        _ => {}
                    }
                }
            }
        }
        Type::Array(a) => {
            let elem_is_u8 = matches!(&*a.elem, Type::Path(p) if p.path.is_ident("u8"));
            if let Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(n),
                ..
            }) = &a.len
            {
                if elem_is_u8 {
                    let n: usize = n.base10_parse()?;
                    if n == 0 {
                        return Err(syn::Error::new_spanned(
                            ty,
                            "a byte array field needs at least one byte",
                        ));
                    }
                    return Ok(Kind::Array(n));
                }
            }
            return Err(syn::Error::new_spanned(
                ty,
                "a byte array field is written `[u8; N]` with a literal length",
            ));
        }
        _ => {}
    }
    Err(syn::Error::new_spanned(
        ty,
        "unsupported header field type; expected `u1`..`u64`, `bool`, `[u8; N]`, `Ipv4Addr`, \
         `Ipv6Addr`, `MacAddr`, or a typed field `#[field(uN)] T` where T: From<uN's storage> + Into<..>",
    ))
}
