// The expansion of pipeline_state.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// An IPv4 and an IPv6 branch that share the state's sockets.
pub struct Host {
    port: MemoryPort,
    state: HostState,
    app: Echo,
    front: Front,
    #[doc(hidden)]
    __tpa: ::tpa::pipeline::Runtime<::tpa::pipeline::BufOf<MemoryPort>, 32, 1>,
}
const _: () = {
    impl Host {
        /// The stage names, in chain order.
        pub const STAGES: [&'static str; 1] = ["front"];
        /// Builds the pipeline from its fields, in declaration order.
        #[allow(clippy::too_many_arguments)]
        pub fn new(port: MemoryPort, state: HostState, app: Echo, front: Front) -> Self {
            Self {
                port,
                state,
                app,
                front,
                __tpa: ::tpa::pipeline::Runtime::new(
                    Self::STAGES,
                    [
                        <Front as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            HostState,
                        >>::CUSTOM_REASONS,
                    ],
                ),
            }
        }
        /// Makes the pipeline read its time from `time` (the real clock,
        /// [`TimeSource::real`](::tpa::time::TimeSource::real), by default): a virtual
        /// clock shared with a wire and the stages' timers, say.
        pub fn with_time_source(mut self, time: ::tpa::time::TimeSource) -> Self {
            self.__tpa.set_time_source(time);
            self
        }
        /// Makes the pipeline read its time from `time` from now on.
        pub fn set_time_source(&mut self, time: ::tpa::time::TimeSource) {
            self.__tpa.set_time_source(time);
        }
        /// Runs one loop iteration at the current time of the
        /// pipeline's time source.
        #[inline]
        pub fn run_once(&mut self) -> ::tpa::pipeline::IterationStats {
            self.run_once_at(self.__tpa.now_ns())
        }
        /// Runs one loop iteration at time `now_ns` (nanoseconds):
        /// receive a burst and run it through the stages, hand the
        /// events to the app and poll it, poll every stage (protocol
        /// output), fire due timers, run the state's polled parts,
        /// flush the transmit and host queues.
        #[inline]
        pub fn run_once_at(&mut self, now_ns: u64) -> ::tpa::pipeline::IterationStats {
            let __tpa_now_ns = now_ns;
            let Self { port, state: __tpa_state, app: __tpa_app, front, __tpa } = self;
            let __tpa_host = &mut ::tpa::pipeline::NoHost;
            let __tpa_observer = &mut ::tpa::pipeline::NoObserver;
            let (__tpa_rx, (__tpa_work, __tpa_deadline)) = __tpa
                .iterate(
                    port,
                    __tpa_host,
                    __tpa_observer,
                    __tpa_now_ns,
                    __tpa_state,
                    (front,),
                    |__tpa_stages, __tpa_burst, __tpa_cx, __tpa_tally| {
                        let (front,) = __tpa_stages;
                        let front = &mut **front;
                        let __tpa_burst = <<Front as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            HostState,
                        >>::In as ::tpa::pipeline::FromPort<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            MemoryPort,
                            Front,
                        >>::from_port(__tpa_burst);
                        <Front as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            HostState,
                        >>::process_burst(
                            front,
                            __tpa_burst,
                            __tpa_cx,
                            |__tpa_verdict, __tpa_cx| {
                                let ::core::option::Option::Some(__tpa_packet) = __tpa_tally
                                    .settle(0, __tpa_verdict, __tpa_cx) else {
                                    return;
                                };
                                __tpa_tally.end(__tpa_packet);
                            },
                        );
                    },
                    |(front,), __tpa_cx, mut __tpa_phases| {
                        __tpa_phases
                            .app::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                HostState,
                                Echo,
                            >(__tpa_app, __tpa_cx);
                        __tpa_phases
                            .poll::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                HostState,
                                Front,
                            >(0, front, __tpa_cx);
                        __tpa_phases
                            .fire_timers::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                HostState,
                                Front,
                            >(0, front, __tpa_cx);
                        __tpa_phases
                            .deadline::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                HostState,
                                Front,
                            >(front, __tpa_cx);
                        __tpa_phases
                            .state::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                HostState,
                            >(__tpa_cx);
                        __tpa_phases.finish()
                    },
                );
            __tpa
                .flush(
                    port,
                    __tpa_host,
                    __tpa_observer,
                    __tpa_now_ns,
                    __tpa_rx,
                    __tpa_work,
                    __tpa_deadline,
                )
        }
        /// Runs `f` with a context over the port and the state,
        /// between iterations: how an application that owns its loop
        /// reads events and sockets and sends. What `f` queues leaves
        /// at the next iteration's flush (earlier if the queue fills).
        pub fn with_cx<R>(
            &mut self,
            f: impl ::core::ops::FnOnce(
                &mut ::tpa::stage::Cx<'_, ::tpa::pipeline::BufOf<MemoryPort>, HostState>,
            ) -> R,
        ) -> R {
            let __tpa_now_ns = self.__tpa.now_ns();
            let Self { port, state: __tpa_state, __tpa, .. } = self;
            let __tpa_host = &mut ::tpa::pipeline::NoHost;
            let __tpa_observer = &mut ::tpa::pipeline::NoObserver;
            __tpa
                .poll(
                    port,
                    __tpa_host,
                    __tpa_observer,
                    __tpa_now_ns,
                    __tpa_state,
                    |__tpa_cx, _| f(__tpa_cx),
                )
        }
        /// Sets how many frames the transmit queue holds before it is
        /// flushed early (default 64, at most
        /// `tpa::pipeline::TX_QUEUE_MAX`).
        pub fn with_tx_queue_depth(mut self, depth: usize) -> Self {
            self.__tpa.set_tx_queue_depth(depth);
            self
        }
        /// Blocks up to `timeout` until the port has a frame to
        /// receive (`Port::wait_rx`, the receive interrupt mode):
        /// what a work loop idling with `IdlePolicy::Wait` calls.
        /// Only the main port wakes it, not a host port.
        #[inline]
        pub fn wait_rx(
            &mut self,
            timeout: ::core::time::Duration,
        ) -> ::tpa::port::RxWait {
            ::tpa::port::Port::wait_rx(&mut self.port, timeout)
        }
        /// Runs iterations until `stop` is set.
        pub fn run(&mut self, stop: &::core::sync::atomic::AtomicBool) {
            while !stop.load(::core::sync::atomic::Ordering::Relaxed) {
                self.run_once();
            }
        }
        /// The loop's counters: per stage (by name), the queues, the loop.
        pub fn stats(
            &self,
        ) -> &::tpa::pipeline::Runtime<::tpa::pipeline::BufOf<MemoryPort>, 32, 1> {
            &self.__tpa
        }
        /// Shows `visit` every `Counted` stage nested in a stage of
        /// the pipeline (a combinator's parts), with the name of
        /// the pipeline's stage it is in.
        pub fn visit_counted(
            &self,
            visit: &mut dyn ::core::ops::FnMut(
                &'static str,
                ::tpa::stage::CountedView<'_>,
            ),
        ) {
            <Front as ::tpa::stage::Stage<
                ::tpa::pipeline::BufOf<MemoryPort>,
                HostState,
            >>::visit_counted(&self.front, &mut |view| visit("front", view));
        }
    }
};
