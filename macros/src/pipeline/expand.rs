//! The code `#[pipeline]` generates: the struct with its loop state, and an
//! inherent impl (`new`, `with_time_source`, `set_time_source`, `run_once`,
//! `run_once_at`, `run`, `stats`) whose loop body is the stage chain written
//! out for this composition.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, Ident};

use super::parse::{Pipeline, RUNTIME_FIELD};

/// Identifiers the generated code introduces. They carry the `__tpa_`
/// prefix the parser reserves, so they cannot clash with field names, and
/// ordinary (call-site) hygiene: an error reported at one of them, placed at
/// a stage's type with [`at`], looks like one written there, so rustc shows
/// it once with the identical one from the stage's other uses.
struct Locals {
    now_ns: Ident,
    host: Ident,
    observer: Ident,
    state: Ident,
    no_state: Ident,
    app: Ident,
    work: Ident,
    phases: Ident,
    deadline: Ident,
    stages: Ident,
    rx: Ident,
    burst: Ident,
    cx: Ident,
    tally: Ident,
    verdict: Ident,
    packet: Ident,
}

impl Locals {
    fn new() -> Self {
        let id = |s: &str| Ident::new(&format!("__tpa_{s}"), Span::call_site());
        Locals {
            now_ns: id("now_ns"),
            host: id("host"),
            observer: id("observer"),
            state: id("state"),
            no_state: id("no_state"),
            app: id("app"),
            work: id("work"),
            phases: id("phases"),
            deadline: id("deadline"),
            stages: id("stages"),
            rx: id("rx"),
            burst: id("burst"),
            cx: id("cx"),
            tally: id("tally"),
            verdict: id("verdict"),
            packet: id("packet"),
        }
    }
}

/// `id`, reported at `span` (a stage's or the observer's type) when an error
/// involves it.
fn at(id: &Ident, span: Span) -> Ident {
    Ident::new(&id.to_string(), span)
}

pub fn expand(p: &Pipeline) -> TokenStream {
    let l = Locals::new();
    let Locals {
        now_ns,
        host,
        observer,
        state,
        no_state,
        app,
        work,
        phases,
        deadline,
        stages,
        rx,
        burst,
        cx,
        tally,
        verdict,
        packet,
    } = &l;

    let krate = crate::crate_or_default(p.krate.as_ref());
    let time_source_doc = crate::doc::doc(&format!(
        "Makes the pipeline read its time from `time` (the real clock, \
         [`TimeSource::real`]({}::time::TimeSource::real), by default): a virtual \
         clock shared with a wire and the stages' timers, say.",
        krate.to_string().replace(' ', "")
    ));
    let port_ty = &p.port.ty;
    let buf = quote_spanned!(port_ty.span()=> #krate::pipeline::BufOf<#port_ty>);
    let state_ty = match &p.state {
        Some(f) => {
            let ty = &f.ty;
            quote!(#ty)
        }
        None => quote!(()),
    };
    let n = proc_macro2::Literal::usize_unsuffixed(p.burst);
    let k = proc_macro2::Literal::usize_unsuffixed(p.stages.len());
    let runtime = format_ident!("{}", RUNTIME_FIELD);
    let runtime_ty = quote!(#krate::pipeline::Runtime<#buf, #n, #k>);

    // The struct, plus the hidden loop state.
    let mut item = p.item.clone();
    if let Fields::Named(named) = &mut item.fields {
        named.named.push(syn::parse_quote! {
            #[doc(hidden)]
            #runtime: #runtime_ty
        });
    }

    let name = &item.ident;
    let vis = &item.vis;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();

    // `new`: every declared field, in order.
    let all_fields: Vec<(&Ident, &syn::Type)> = match &p.item.fields {
        Fields::Named(named) => named
            .named
            .iter()
            .filter_map(|f| f.ident.as_ref().map(|i| (i, &f.ty)))
            .collect(),
        _ => Vec::new(),
    };
    let field_idents: Vec<&Ident> = all_fields.iter().map(|(i, _)| *i).collect();
    let new_params = all_fields.iter().map(|(i, t)| quote!(#i: #t));
    let stage_names = p.stages.iter().map(|s| s.ident.to_string());
    // Spanned at each stage's type, as the other uses of the stage: a
    // type that is no stage gets its one error there, not one more here.
    let visit_counted = p.stages.iter().map(|s| {
        let (ident, ty) = (&s.ident, &s.ty);
        let name = ident.to_string();
        quote_spanned!(ty.span()=>
            <#ty as #krate::stage::Stage<#buf, #state_ty>>::visit_counted(
                &self.#ident,
                &mut |view| visit(#name, view),
            );
        )
    });
    let custom_reasons = p.stages.iter().map(|s| {
        let ty = &s.ty;
        quote_spanned!(ty.span()=> <#ty as #krate::stage::Stage<#buf, #state_ty>>::CUSTOM_REASONS)
    });

    // The chain, packet by packet, after the first stage's burst call.
    let first = &p.stages[0];
    let (first_ident, first_ty) = (&first.ident, &first.ty);
    let links = p.stages.windows(2).enumerate().map(|(i, pair)| {
        let (prev_ty, next) = (&pair[0].ty, &pair[1]);
        let (next_ident, next_ty) = (&next.ident, &next.ty);
        let index = proc_macro2::Literal::usize_unsuffixed(i + 1);
        let span = next_ty.span();
        let (packet, cx, tally) = (at(packet, span), at(cx, span), at(tally, span));
        let join = quote_spanned! {next_ty.span()=>
            <<#next_ty as #krate::stage::Stage<#buf, #state_ty>>::In as #krate::pipeline::Joins<
                <#prev_ty as #krate::stage::Stage<#buf, #state_ty>>::Out, #prev_ty, #next_ty
            >>::join(#packet)
        };
        quote_spanned! {next_ty.span()=>
            let #packet = #join;
            let ::core::option::Option::Some(#packet) = #tally.settle(
                #index,
                <#next_ty as #krate::stage::Stage<#buf, #state_ty>>::process(#next_ident, #packet, #cx),
                #cx,
            ) else {
                return;
            };
        }
    });
    let process_burst = quote_spanned! {first_ty.span()=>
        <#first_ty as #krate::stage::Stage<#buf, #state_ty>>::process_burst
    };
    let from_port = quote_spanned! {first_ty.span()=>
        <<#first_ty as #krate::stage::Stage<#buf, #state_ty>>::In as #krate::pipeline::FromPort<#buf, #port_ty, #first_ty>>::from_port(#burst)
    };
    let span = first_ty.span();
    let (packet_first, cx_first, tally_first, verdict, burst_first) = (
        at(packet, span),
        at(cx, span),
        at(tally, span),
        at(verdict, span),
        at(burst, span),
    );
    let settle_first = quote_spanned! {first_ty.span()=>
        let ::core::option::Option::Some(#packet_first) =
            #tally_first.settle(0, #verdict, #cx_first)
        else {
            return;
        };
    };
    let last_ty = &p.stages[p.stages.len() - 1].ty;
    let end = {
        let (tally, packet) = (at(tally, last_ty.span()), at(packet, last_ty.span()));
        quote_spanned!(last_ty.span()=> #tally.end(#packet);)
    };
    let run_chain = quote_spanned! {first_ty.span()=>
        #process_burst(#first_ident, #burst_first, #cx_first, |#verdict, #cx_first| {
            #settle_first
            #(#links)*
            #end
        });
    };
    // After the application: every stage's poll (protocol output), then
    // every stage's timers, then their deadlines.
    let phase_calls = |method: &str| -> Vec<TokenStream> {
        let method = Ident::new(method, Span::call_site());
        p.stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (ident, ty) = (&s.ident, &s.ty);
                let index = proc_macro2::Literal::usize_unsuffixed(i);
                let cx = at(cx, ty.span());
                let phases = at(phases, ty.span());
                let stage = quote_spanned!(ty.span()=> ::<#buf, #state_ty, #ty>);
                if method == "deadline" {
                    quote_spanned!(ty.span()=> #phases.#method #stage(#ident, #cx);)
                } else {
                    quote_spanned!(ty.span()=> #phases.#method #stage(#index, #ident, #cx);)
                }
            })
            .collect()
    };
    let (polls, timers, deadlines) = (
        phase_calls("poll"),
        phase_calls("fire_timers"),
        phase_calls("deadline"),
    );
    // The application: its handlers for the events the stages raised, then
    // its own poll.
    let (app_binding, app_phase) = match &p.app {
        Some(f) => {
            let (ident, ty) = (&f.ident, &f.ty);
            let app_at = at(app, ty.span());
            let (cx, phases) = (at(cx, ty.span()), at(phases, ty.span()));
            (
                quote!(#ident: #app_at,),
                quote_spanned!(ty.span()=> #phases.app::<#buf, #state_ty, #ty>(#app_at, #cx);),
            )
        }
        None => (quote!(), quote!()),
    };
    // After the stages: the state's own work (its polled parts' output,
    // timers and deadline), once.
    let state_phase = match &p.state {
        Some(f) => {
            let ty = &f.ty;
            let (cx, phases) = (at(cx, ty.span()), at(phases, ty.span()));
            quote_spanned!(ty.span()=> #phases.state::<#buf, #ty>(#cx);)
        }
        None => quote!(),
    };
    let (state_binding, no_state_binding) = match &p.state {
        Some(f) => {
            let ident = &f.ident;
            (quote!(#ident: #state,), quote!())
        }
        None => (
            quote!(),
            quote!(let mut #no_state = (); let #state = &mut #no_state;),
        ),
    };

    let port_ident = &p.port.ident;
    let stage_idents: Vec<_> = p.stages.iter().map(|s| &s.ident).collect();
    let stage_idents = &stage_idents;
    let (host_binding, no_host) = match &p.host {
        Some(h) => {
            let ident = &h.ident;
            (quote!(#ident: #host,), quote!())
        }
        None => (quote!(), quote!(let #host = &mut #krate::pipeline::NoHost;)),
    };
    // An observer that is not an `Observer` is reported at its type.
    let observer = match &p.observer {
        Some(t) => at(observer, t.ty.span()),
        None => observer.clone(),
    };
    let (observer_binding, no_observer) = match &p.observer {
        Some(t) => {
            let ident = &t.ident;
            (quote!(#ident: #observer,), quote!())
        }
        None => (
            quote!(),
            quote!(let #observer = &mut #krate::pipeline::NoObserver;),
        ),
    };

    quote! {
        #item

        const _: () = {
            impl #impl_generics #name #ty_generics #where_clause {
                /// The stage names, in chain order.
                #vis const STAGES: [&'static str; #k] = [#(#stage_names),*];

                /// Builds the pipeline from its fields, in declaration order.
                #[allow(clippy::too_many_arguments)]
                #vis fn new(#(#new_params),*) -> Self {
                    Self {
                        #(#field_idents,)*
                        #runtime: #krate::pipeline::Runtime::new(Self::STAGES, [#(#custom_reasons),*]),
                    }
                }

                #time_source_doc
                #vis fn with_time_source(mut self, time: #krate::time::TimeSource) -> Self {
                    self.#runtime.set_time_source(time);
                    self
                }

                /// Makes the pipeline read its time from `time` from now on.
                #vis fn set_time_source(&mut self, time: #krate::time::TimeSource) {
                    self.#runtime.set_time_source(time);
                }

                /// Runs one loop iteration at the current time of the
                /// pipeline's time source.
                #[inline]
                #vis fn run_once(&mut self) -> #krate::pipeline::IterationStats {
                    self.run_once_at(self.#runtime.now_ns())
                }

                /// Runs one loop iteration at time `now_ns` (nanoseconds):
                /// receive a burst and run it through the stages, hand the
                /// events to the app and poll it, poll every stage (protocol
                /// output), fire due timers, run the state's polled parts,
                /// flush the transmit and host queues.
                #[inline]
                #vis fn run_once_at(&mut self, now_ns: u64) -> #krate::pipeline::IterationStats {
                    // The fields are bound by their names below: a copy
                    // under a reserved name cannot be shadowed by one.
                    let #now_ns = now_ns;
                    let Self { #port_ident, #host_binding #observer_binding #state_binding #app_binding #(#stage_idents,)* #runtime } = self;
                    #no_host
                    #no_observer
                    #no_state_binding
                    // Receive a burst and run it through the stages; then
                    // deliver to the app, the app's poll, protocol output,
                    // due timers, then the state's own (one context for
                    // both).
                    // The stages go to both steps as one tuple, lent to
                    // the first and then moved to the second.
                    let (#rx, (#work, #deadline)) = #runtime.iterate(#port_ident, #host, #observer, #now_ns, #state, (#(#stage_idents,)*), |#stages, #burst, #cx, #tally| {
                        let (#(#stage_idents,)*) = #stages;
                        #(let #stage_idents = &mut **#stage_idents;)*
                        let #burst = #from_port;
                        #run_chain
                    }, |(#(#stage_idents,)*), #cx, mut #phases| {
                        #app_phase
                        #(#polls)*
                        #(#timers)*
                        #(#deadlines)*
                        #state_phase
                        #phases.finish()
                    });
                    // Flush.
                    #runtime.flush(#port_ident, #host, #observer, #now_ns, #rx, #work, #deadline)
                }

                /// Runs `f` with a context over the port and the state,
                /// between iterations: how an application that owns its loop
                /// reads events and sockets and sends. What `f` queues leaves
                /// at the next iteration's flush (earlier if the queue fills).
                #vis fn with_cx<R>(&mut self, f: impl ::core::ops::FnOnce(&mut #krate::stage::Cx<'_, #buf, #state_ty>) -> R) -> R {
                    let #now_ns = self.#runtime.now_ns();
                    let Self { #port_ident, #host_binding #observer_binding #state_binding #runtime, .. } = self;
                    #no_host
                    #no_observer
                    #no_state_binding
                    #runtime.poll(#port_ident, #host, #observer, #now_ns, #state, |#cx, _| f(#cx))
                }

                /// Sets how many frames the transmit queue holds before it is
                /// flushed early (default 64, at most
                /// `tpa::pipeline::TX_QUEUE_MAX`).
                #vis fn with_tx_queue_depth(mut self, depth: usize) -> Self {
                    self.#runtime.set_tx_queue_depth(depth);
                    self
                }

                /// Blocks up to `timeout` until the port has a frame to
                /// receive (`Port::wait_rx`, the receive interrupt mode):
                /// what a work loop idling with `IdlePolicy::Wait` calls.
                /// Only the main port wakes it, not a host port.
                #[inline]
                #vis fn wait_rx(&mut self, timeout: ::core::time::Duration) -> #krate::port::RxWait {
                    #krate::port::Port::wait_rx(&mut self.#port_ident, timeout)
                }

                /// Runs iterations until `stop` is set.
                #vis fn run(&mut self, stop: &::core::sync::atomic::AtomicBool) {
                    while !stop.load(::core::sync::atomic::Ordering::Relaxed) {
                        self.run_once();
                    }
                }

                /// The loop's counters: per stage (by name), the queues, the loop.
                #vis fn stats(&self) -> &#runtime_ty {
                    &self.#runtime
                }

                /// Shows `visit` every `Counted` stage nested in a stage of
                /// the pipeline (a combinator's parts), with the name of
                /// the pipeline's stage it is in.
                #vis fn visit_counted(
                    &self,
                    visit: &mut dyn ::core::ops::FnMut(&'static str, #krate::stage::CountedView<'_>),
                ) {
                    #(#visit_counted)*
                }
            }
        };
    }
}
