//! Reading and checking a `#[pipeline]` struct.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Fields, Ident, Item, ItemStruct, Lit, Meta, Type};

/// Packets per RX burst when `burst` is not given (tpa::port::BURST_SIZE).
const DEFAULT_BURST: usize = 32;
/// The largest burst accepted; bursts live inline in the pipeline struct.
const MAX_BURST: usize = 1024;
/// The hidden field holding the loop state; also the prefix of every name
/// the generated code introduces.
pub const RUNTIME_FIELD: &str = "__tpa";

/// A field of the pipeline struct with its role.
pub struct Field {
    pub ident: Ident,
    pub ty: Type,
}

/// A checked `#[pipeline]` declaration.
pub struct Pipeline {
    /// The struct as written, with the `#[port]` / `#[host]` / `#[observer]`
    /// markers removed.
    pub item: ItemStruct,
    pub burst: usize,
    /// `crate = <path>`: where the `tpa` crate is, for a crate that renames
    /// the dependency (`::tpa` when not given).
    pub krate: Option<syn::Path>,
    pub port: Field,
    pub host: Option<Field>,
    /// The observer of the frames crossing the port, if any.
    pub observer: Option<Field>,
    /// The state lent to every stage and the app, if any.
    pub state: Option<Field>,
    /// The application called inline, if any.
    pub app: Option<Field>,
    pub stages: Vec<Field>,
}

/// What a field is marked as.
#[derive(PartialEq)]
enum Role {
    Port,
    Host,
    Observer,
    State,
    App,
    Stage,
}

impl Pipeline {
    pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Pipeline> {
        let Options { burst, krate } = parse_options(attr)?;
        let mut item = match syn::parse2::<Item>(item)? {
            Item::Struct(s) => s,
            other => {
                return Err(syn::Error::new(
                    item_span(&other),
                    "#[pipeline] goes on a struct whose fields are the port and the stages",
                ))
            }
        };
        let Fields::Named(named) = &mut item.fields else {
            return Err(syn::Error::new(
                item.fields
                    .span()
                    .join(item.ident.span())
                    .unwrap_or(item.ident.span()),
                "#[pipeline] needs named fields: the field names are the stage names",
            ));
        };

        let mut port = None;
        let mut host = None;
        let mut observer = None;
        let mut state = None;
        let mut app = None;
        let mut stages = Vec::new();
        let mut errors: Option<syn::Error> = None;
        let mut push_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let mut seen: Vec<Ident> = Vec::new();

        for field in named.named.iter_mut() {
            let ident = field.ident.clone().expect("named field");
            if ident.to_string().starts_with(RUNTIME_FIELD) {
                push_err(syn::Error::new(
                    ident.span(),
                    format!("names starting with `{RUNTIME_FIELD}` are reserved for what #[pipeline] adds"),
                ));
            }
            if let Some(first) = seen.iter().find(|s| **s == ident) {
                let mut e =
                    syn::Error::new(ident.span(), format!("duplicate stage name `{ident}`"));
                e.combine(syn::Error::new(
                    first.span(),
                    format!("`{ident}` first declared here"),
                ));
                push_err(e);
                continue;
            }
            seen.push(ident.clone());
            let role = match take_role(&mut field.attrs) {
                Ok(r) => r,
                Err(e) => {
                    push_err(e);
                    continue;
                }
            };
            let f = Field {
                ident,
                ty: field.ty.clone(),
            };
            match role {
                Role::Port => {
                    if port.is_some() {
                        push_err(syn::Error::new(
                            f.ident.span(),
                            "a pipeline has one `#[port]` field",
                        ));
                    }
                    port = Some(f);
                }
                Role::Host => {
                    if host.is_some() {
                        push_err(syn::Error::new(
                            f.ident.span(),
                            "a pipeline has at most one `#[host]` field",
                        ));
                    }
                    host = Some(f);
                }
                Role::Observer => {
                    if observer.is_some() {
                        push_err(syn::Error::new(
                            f.ident.span(),
                            "a pipeline has at most one `#[observer]` field; to show frames to two observers, make the field a pair `(A, B)`",
                        ));
                    }
                    observer = Some(f);
                }
                Role::State => {
                    if state.is_some() {
                        push_err(syn::Error::new(
                            f.ident.span(),
                            "a pipeline has at most one `#[state]` field; put the parts in one struct deriving `tpa::state::State`",
                        ));
                    }
                    state = Some(f);
                }
                Role::App => {
                    if app.is_some() {
                        push_err(syn::Error::new(
                            f.ident.span(),
                            "a pipeline has at most one `#[app]` field",
                        ));
                    }
                    app = Some(f);
                }
                Role::Stage => stages.push(f),
            }
        }
        // Without a `#[port]` marker, the field called `port` is the port.
        if port.is_none() {
            if let Some(i) = stages.iter().position(|s| s.ident == "port") {
                port = Some(stages.remove(i));
            }
        }
        let Some(port) = port else {
            push_err(syn::Error::new(
                item.ident.span(),
                "a #[pipeline] struct needs a port: mark the field holding it `#[port]` (or call it `port`)",
            ));
            return Err(errors.expect("just pushed"));
        };
        if let Some(e) = unbounded_port_param(&item, &port.ty) {
            push_err(e);
        }
        if stages.is_empty() {
            push_err(syn::Error::new(
                item.ident.span(),
                "a #[pipeline] struct needs at least one stage after its port",
            ));
        }
        if let Some(e) = errors {
            return Err(e);
        }
        Ok(Pipeline {
            item,
            burst,
            krate,
            port,
            host,
            observer,
            state,
            app,
            stages,
        })
    }
}

/// An error if the port's type is a type parameter of the struct declared
/// without any bound (it must be bounded by `tpa::port::Port`).
fn unbounded_port_param(item: &ItemStruct, ty: &Type) -> Option<syn::Error> {
    let Type::Path(path) = ty else { return None };
    let ident = path.path.get_ident()?;
    let param = item.generics.type_params().find(|p| p.ident == *ident)?;
    let in_where = item.generics.where_clause.as_ref().is_some_and(|w| {
        w.predicates.iter().any(|pred| match pred {
            syn::WherePredicate::Type(t) => {
                matches!(&t.bounded_ty, Type::Path(bp) if bp.path.is_ident(ident))
            }
            _ => false,
        })
    });
    if param.bounds.is_empty() && !in_where {
        Some(syn::Error::new(
            param.ident.span(),
            format!("the port type parameter `{ident}` needs a bound: `{ident}: tpa::port::Port`"),
        ))
    } else {
        None
    }
}

/// The arguments of `#[pipeline(..)]`.
struct Options {
    burst: usize,
    krate: Option<syn::Path>,
}

/// Reads `burst = N` and `crate = path` from the attribute's arguments.
fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut burst = DEFAULT_BURST;
    let mut krate = None;
    let metas =
        syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated.parse2(attr)?;
    for meta in metas {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("burst") => {
                let Expr::Lit(ExprLit {
                    lit: Lit::Int(n), ..
                }) = &nv.value
                else {
                    return Err(syn::Error::new(
                        nv.value.span(),
                        "`burst` takes an integer literal, like `burst = 64`",
                    ));
                };
                let n: usize = n.base10_parse()?;
                if n == 0 || n > MAX_BURST {
                    return Err(syn::Error::new(
                        nv.value.span(),
                        format!("`burst` must be between 1 and {MAX_BURST}"),
                    ));
                }
                burst = n;
            }
            Meta::NameValue(nv) if nv.path.is_ident("crate") => {
                if krate.is_some() {
                    return Err(syn::Error::new(nv.path.span(), "`crate` given twice"));
                }
                krate = Some(crate::crate_path(nv.value.clone())?);
            }
            _ => {
                return Err(syn::Error::new(
                    meta.span(),
                    "unknown #[pipeline] option; expected `burst = N` or `crate = <path to tpa>`",
                ))
            }
        }
    }
    Ok(Options { burst, krate })
}

/// Removes a `#[port]`, `#[host]`, `#[observer]`, `#[state]` or `#[app]` marker from `attrs` and says
/// which.
fn take_role(attrs: &mut Vec<Attribute>) -> syn::Result<Role> {
    let mut role = Role::Stage;
    let mut error = None;
    attrs.retain(|a| {
        let r = if a.path().is_ident("port") {
            Role::Port
        } else if a.path().is_ident("host") {
            Role::Host
        } else if a.path().is_ident("observer") {
            Role::Observer
        } else if a.path().is_ident("state") {
            Role::State
        } else if a.path().is_ident("app") {
            Role::App
        } else {
            return true;
        };
        if !matches!(a.meta, Meta::Path(_)) {
            error = Some(syn::Error::new(
                a.span(),
                "`#[port]`, `#[host]`, `#[observer]`, `#[state]` and `#[app]` take no arguments",
            ));
        } else if role != Role::Stage {
            error = Some(syn::Error::new(
                a.span(),
                "a field is the port, the host, the observer, the state, the app or a stage, not two of them",
            ));
        }
        role = r;
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(role),
    }
}

/// The item as it will compile without the macro: `#[port]` / `#[host]` /
/// `#[observer]` markers and repeated fields removed. Emitted beside a macro
/// error.
pub fn fallback(item: TokenStream) -> TokenStream {
    let Ok(mut s) = syn::parse2::<ItemStruct>(item.clone()) else {
        return item;
    };
    if let Fields::Named(named) = &mut s.fields {
        let mut seen: Vec<Ident> = Vec::new();
        let fields = std::mem::take(&mut named.named);
        for mut f in fields {
            let Some(ident) = f.ident.clone() else {
                continue;
            };
            if seen.contains(&ident) {
                continue;
            }
            seen.push(ident);
            f.attrs.retain(|a| {
                !["port", "host", "observer", "state", "app"]
                    .iter()
                    .any(|marker| a.path().is_ident(marker))
            });
            named.named.push(f);
        }
    }
    quote::ToTokens::into_token_stream(s)
}

/// Where to point at an item that is not a struct.
fn item_span(item: &Item) -> Span {
    match item {
        Item::Enum(e) => e.enum_token.span,
        Item::Union(u) => u.union_token.span,
        Item::Fn(f) => f.sig.fn_token.span,
        other => other.span(),
    }
}
