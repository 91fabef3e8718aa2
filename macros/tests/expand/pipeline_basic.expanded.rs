// The expansion of pipeline_basic.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// Answers ARP and ICMP echo requests.
pub struct Responder {
    port: MemoryPort,
    eth: EthernetIn,
    arp: ArpResponder,
    ip: Ipv4In,
    echo: EchoResponder,
    #[doc(hidden)]
    __tpa: ::tpa::pipeline::Runtime<::tpa::pipeline::BufOf<MemoryPort>, 32, 4>,
}
const _: () = {
    impl Responder {
        /// The stage names, in chain order.
        pub const STAGES: [&'static str; 4] = ["eth", "arp", "ip", "echo"];
        /// Builds the pipeline from its fields, in declaration order.
        #[allow(clippy::too_many_arguments)]
        pub fn new(
            port: MemoryPort,
            eth: EthernetIn,
            arp: ArpResponder,
            ip: Ipv4In,
            echo: EchoResponder,
        ) -> Self {
            Self {
                port,
                eth,
                arp,
                ip,
                echo,
                __tpa: ::tpa::pipeline::Runtime::new(
                    Self::STAGES,
                    [
                        <EthernetIn as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            (),
                        >>::CUSTOM_REASONS,
                        <ArpResponder as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            (),
                        >>::CUSTOM_REASONS,
                        <Ipv4In as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            (),
                        >>::CUSTOM_REASONS,
                        <EchoResponder as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            (),
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
            let Self { port, eth, arp, ip, echo, __tpa } = self;
            let __tpa_host = &mut ::tpa::pipeline::NoHost;
            let __tpa_observer = &mut ::tpa::pipeline::NoObserver;
            let mut __tpa_no_state = ();
            let __tpa_state = &mut __tpa_no_state;
            let (__tpa_rx, (__tpa_work, __tpa_deadline)) = __tpa
                .iterate(
                    port,
                    __tpa_host,
                    __tpa_observer,
                    __tpa_now_ns,
                    __tpa_state,
                    (eth, arp, ip, echo),
                    |__tpa_stages, __tpa_burst, __tpa_cx, __tpa_tally| {
                        let (eth, arp, ip, echo) = __tpa_stages;
                        let eth = &mut **eth;
                        let arp = &mut **arp;
                        let ip = &mut **ip;
                        let echo = &mut **echo;
                        let __tpa_burst = <<EthernetIn as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            (),
                        >>::In as ::tpa::pipeline::FromPort<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            MemoryPort,
                            EthernetIn,
                        >>::from_port(__tpa_burst);
                        <EthernetIn as ::tpa::stage::Stage<
                            ::tpa::pipeline::BufOf<MemoryPort>,
                            (),
                        >>::process_burst(
                            eth,
                            __tpa_burst,
                            __tpa_cx,
                            |__tpa_verdict, __tpa_cx| {
                                let ::core::option::Option::Some(__tpa_packet) = __tpa_tally
                                    .settle(0, __tpa_verdict, __tpa_cx) else {
                                    return;
                                };
                                let __tpa_packet = <<ArpResponder as ::tpa::stage::Stage<
                                    ::tpa::pipeline::BufOf<MemoryPort>,
                                    (),
                                >>::In as ::tpa::pipeline::Joins<
                                    <EthernetIn as ::tpa::stage::Stage<
                                        ::tpa::pipeline::BufOf<MemoryPort>,
                                        (),
                                    >>::Out,
                                    EthernetIn,
                                    ArpResponder,
                                >>::join(__tpa_packet);
                                let ::core::option::Option::Some(__tpa_packet) = __tpa_tally
                                    .settle(
                                        1,
                                        <ArpResponder as ::tpa::stage::Stage<
                                            ::tpa::pipeline::BufOf<MemoryPort>,
                                            (),
                                        >>::process(arp, __tpa_packet, __tpa_cx),
                                        __tpa_cx,
                                    ) else {
                                    return;
                                };
                                let __tpa_packet = <<Ipv4In as ::tpa::stage::Stage<
                                    ::tpa::pipeline::BufOf<MemoryPort>,
                                    (),
                                >>::In as ::tpa::pipeline::Joins<
                                    <ArpResponder as ::tpa::stage::Stage<
                                        ::tpa::pipeline::BufOf<MemoryPort>,
                                        (),
                                    >>::Out,
                                    ArpResponder,
                                    Ipv4In,
                                >>::join(__tpa_packet);
                                let ::core::option::Option::Some(__tpa_packet) = __tpa_tally
                                    .settle(
                                        2,
                                        <Ipv4In as ::tpa::stage::Stage<
                                            ::tpa::pipeline::BufOf<MemoryPort>,
                                            (),
                                        >>::process(ip, __tpa_packet, __tpa_cx),
                                        __tpa_cx,
                                    ) else {
                                    return;
                                };
                                let __tpa_packet = <<EchoResponder as ::tpa::stage::Stage<
                                    ::tpa::pipeline::BufOf<MemoryPort>,
                                    (),
                                >>::In as ::tpa::pipeline::Joins<
                                    <Ipv4In as ::tpa::stage::Stage<
                                        ::tpa::pipeline::BufOf<MemoryPort>,
                                        (),
                                    >>::Out,
                                    Ipv4In,
                                    EchoResponder,
                                >>::join(__tpa_packet);
                                let ::core::option::Option::Some(__tpa_packet) = __tpa_tally
                                    .settle(
                                        3,
                                        <EchoResponder as ::tpa::stage::Stage<
                                            ::tpa::pipeline::BufOf<MemoryPort>,
                                            (),
                                        >>::process(echo, __tpa_packet, __tpa_cx),
                                        __tpa_cx,
                                    ) else {
                                    return;
                                };
                                __tpa_tally.end(__tpa_packet);
                            },
                        );
                    },
                    |(eth, arp, ip, echo), __tpa_cx, mut __tpa_phases| {
                        __tpa_phases
                            .poll::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                EthernetIn,
                            >(0, eth, __tpa_cx);
                        __tpa_phases
                            .poll::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                ArpResponder,
                            >(1, arp, __tpa_cx);
                        __tpa_phases
                            .poll::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                Ipv4In,
                            >(2, ip, __tpa_cx);
                        __tpa_phases
                            .poll::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                EchoResponder,
                            >(3, echo, __tpa_cx);
                        __tpa_phases
                            .fire_timers::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                EthernetIn,
                            >(0, eth, __tpa_cx);
                        __tpa_phases
                            .fire_timers::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                ArpResponder,
                            >(1, arp, __tpa_cx);
                        __tpa_phases
                            .fire_timers::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                Ipv4In,
                            >(2, ip, __tpa_cx);
                        __tpa_phases
                            .fire_timers::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                EchoResponder,
                            >(3, echo, __tpa_cx);
                        __tpa_phases
                            .deadline::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                EthernetIn,
                            >(eth, __tpa_cx);
                        __tpa_phases
                            .deadline::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                ArpResponder,
                            >(arp, __tpa_cx);
                        __tpa_phases
                            .deadline::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                Ipv4In,
                            >(ip, __tpa_cx);
                        __tpa_phases
                            .deadline::<
                                ::tpa::pipeline::BufOf<MemoryPort>,
                                (),
                                EchoResponder,
                            >(echo, __tpa_cx);
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
                &mut ::tpa::stage::Cx<'_, ::tpa::pipeline::BufOf<MemoryPort>, ()>,
            ) -> R,
        ) -> R {
            let __tpa_now_ns = self.__tpa.now_ns();
            let Self { port, __tpa, .. } = self;
            let __tpa_host = &mut ::tpa::pipeline::NoHost;
            let __tpa_observer = &mut ::tpa::pipeline::NoObserver;
            let mut __tpa_no_state = ();
            let __tpa_state = &mut __tpa_no_state;
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
        ) -> &::tpa::pipeline::Runtime<::tpa::pipeline::BufOf<MemoryPort>, 32, 4> {
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
            <EthernetIn as ::tpa::stage::Stage<
                ::tpa::pipeline::BufOf<MemoryPort>,
                (),
            >>::visit_counted(&self.eth, &mut |view| visit("eth", view));
            <ArpResponder as ::tpa::stage::Stage<
                ::tpa::pipeline::BufOf<MemoryPort>,
                (),
            >>::visit_counted(&self.arp, &mut |view| visit("arp", view));
            <Ipv4In as ::tpa::stage::Stage<
                ::tpa::pipeline::BufOf<MemoryPort>,
                (),
            >>::visit_counted(&self.ip, &mut |view| visit("ip", view));
            <EchoResponder as ::tpa::stage::Stage<
                ::tpa::pipeline::BufOf<MemoryPort>,
                (),
            >>::visit_counted(&self.echo, &mut |view| visit("echo", view));
        }
    }
};
