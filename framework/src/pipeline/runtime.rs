//! The state and the loop body shared by every generated pipeline.

use core::fmt;

use super::observer::{NoObserver, Observer};
use crate::app::{App, Events};
use crate::buf::PacketBuf;
use crate::port::{Burst, Port, PortCaps, BURST_SIZE};
use crate::stage::{earliest, Cx, Stage, StageStats, Verdict};
use crate::state::{Part, PolledState};
use crate::time::TimeSource;

/// Default depth of the transmit queue; it is flushed early when it fills
/// up. Set another with [`Runtime::set_tx_queue_depth`] (the generated
/// `with_tx_queue_depth`).
pub const TX_QUEUE_LEN: usize = 64;
/// The deepest transmit queue (its slots live inline in the pipeline).
pub const TX_QUEUE_MAX: usize = u8::MAX as usize;
/// Capacity of the host (exception path) queue.
pub const HOST_QUEUE_LEN: usize = 32;

/// Where packets handed to the host go: the exception path, and what the
/// host sends back.
///
/// Any [`Port`] with the same buffer type is a host sink (a TAP device, say,
/// whose peer is the kernel): it transmits what is handed to the host and
/// receives what the host sends, which a stage reads with
/// [`Cx::from_host`] (the host's replies, sent out of the pipeline's own
/// port on a bifurcated NIC). A pipeline without a `#[host]` field uses
/// [`NoHost`].
pub trait HostSink<B> {
    /// Takes packets from the front of `queue`; those not taken stay.
    /// Returns how many were taken.
    fn deliver(&mut self, queue: &mut Burst<B, HOST_QUEUE_LEN>) -> usize;

    /// Adds to `out` what the host sent, up to `out`'s room; returns how
    /// many. The default: a host that sends nothing.
    #[inline]
    fn receive(&mut self, out: &mut Burst<B, BURST_SIZE>) -> usize {
        let _ = out;
        0
    }

    /// Whether this is a host at all: `false` only for [`NoHost`], so a
    /// stage whose policy hands frames to the host can tell that they
    /// would all be dropped ([`Cx::has_host`]).
    #[inline]
    fn is_present(&self) -> bool {
        true
    }
}

impl<P: Port> HostSink<P::Buf> for P {
    #[inline]
    fn deliver(&mut self, queue: &mut Burst<P::Buf, HOST_QUEUE_LEN>) -> usize {
        self.tx_burst(queue)
    }

    #[inline]
    fn receive(&mut self, out: &mut Burst<P::Buf, BURST_SIZE>) -> usize {
        self.rx_burst(out)
    }
}

/// No host path: packets handed to the host are dropped and counted in
/// [`QueueCounters::host_dropped`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHost;

impl<B> HostSink<B> for NoHost {
    #[inline]
    fn deliver(&mut self, _queue: &mut Burst<B, HOST_QUEUE_LEN>) -> usize {
        0
    }

    #[inline]
    fn is_present(&self) -> bool {
        false
    }
}

/// The port side of a [`Cx`] that goes to the port itself: its
/// capabilities, an early flush of a full queue, the host path. Called
/// through a `dyn` reference, so `Cx` has one type per buffer type whatever
/// the port; none of them is per packet on the fast path (a flush is once
/// per full queue, out of line). Allocation does not go through here: it
/// is a direct call to the buffer type's pool ([`Pooled::Pool`](crate::buf::Pooled::Pool)).
pub trait PortIo<B> {
    /// The port's capabilities.
    fn caps(&self) -> &PortCaps;
    /// Transmits from the front of the transmit queue at time `now_ns`
    /// (what an observer is shown); returns how many were sent.
    fn send(&mut self, queue: &mut TxQueue<B>, now_ns: u64) -> usize;
    /// Hands packets from the front of `queue` to the host; returns how many.
    fn send_to_host(&mut self, queue: &mut Burst<B, HOST_QUEUE_LEN>) -> usize;
    /// Adds to `out` what the host sent ([`HostSink::receive`]); returns how
    /// many.
    fn receive_from_host(&mut self, out: &mut Burst<B, BURST_SIZE>) -> usize;
    /// Whether the pipeline has a host path ([`HostSink::is_present`]).
    fn has_host(&self) -> bool;
}

/// A port, a host sink and an observer, seen as [`PortIo`].
struct Io<'a, P, H, T> {
    port: &'a mut P,
    host: &'a mut H,
    observer: &'a mut T,
}

impl<P: Port, H: HostSink<P::Buf>, T: Observer<P::Buf>> PortIo<P::Buf> for Io<'_, P, H, T> {
    fn caps(&self) -> &PortCaps {
        self.port.caps()
    }
    fn send(&mut self, queue: &mut TxQueue<P::Buf>, now_ns: u64) -> usize {
        queue.offer(self.port, self.observer, now_ns)
    }
    fn send_to_host(&mut self, queue: &mut Burst<P::Buf, HOST_QUEUE_LEN>) -> usize {
        self.host.deliver(queue)
    }
    fn receive_from_host(&mut self, out: &mut Burst<P::Buf, BURST_SIZE>) -> usize {
        self.host.receive(out)
    }
    fn has_host(&self) -> bool {
        self.host.is_present()
    }
}

/// What happened to packets leaving through the queues.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounters {
    /// Packets the port accepted for transmission.
    pub tx_sent: u64,
    /// Packets dropped because the transmit queue was full and the port
    /// would take nothing.
    pub tx_dropped: u64,
    /// Packets the host sink accepted.
    pub host_sent: u64,
    /// Packets for the host dropped (no host, or the host was full).
    pub host_dropped: u64,
    /// Buffer allocations that failed.
    pub alloc_failed: u64,
}

/// The transmit queue: frames waiting for the port, in order, and how many
/// of them (at the front) an observer has already seen.
#[derive(Debug)]
pub struct TxQueue<B> {
    /// One slot more than the deepest queue: a `u8` depth is then provably
    /// below the capacity, so the compiler drops the array's own bound
    /// check from the per-packet push and the depth compare is the only one.
    frames: Burst<B, { TX_QUEUE_MAX + 1 }>,
    shown: usize,
    depth: u8,
    /// Frames offered since the pipeline started: every frame queued and
    /// every frame dropped at a full queue (what `PortCx::tx_offered` reads).
    offered: u64,
}

impl<B> TxQueue<B> {
    fn new() -> Self {
        TxQueue {
            frames: Burst::new(),
            shown: 0,
            depth: TX_QUEUE_LEN as u8,
            offered: 0,
        }
    }

    /// How many frames the queue holds before it is flushed early.
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Free slots.
    pub fn remaining(&self) -> usize {
        usize::from(self.depth).saturating_sub(self.frames.len())
    }

    /// Appends `frame`, or gives it back when the queue is full.
    #[inline]
    pub(crate) fn try_push(&mut self, frame: B) -> Result<(), B> {
        self.push_within(frame, self.depth)
    }

    /// Appends `frame` if fewer than `depth` frames wait (the queue's own
    /// depth, which a [`Cx`] reads once and keeps in a register).
    #[inline(always)]
    pub(crate) fn push_within(&mut self, frame: B, depth: u8) -> Result<(), B> {
        if self.frames.len() >= usize::from(depth) {
            return Err(frame);
        }
        self.frames.try_push(frame)?;
        self.offered += 1;
        Ok(())
    }

    /// Counts a frame dropped at a full queue as offered.
    #[inline]
    pub(crate) fn count_dropped(&mut self) {
        self.offered += 1;
    }

    /// Frames offered since the pipeline started: queued, or dropped at a
    /// full queue. Taking frames out ([`drain`](Self::drain)) or sending
    /// them does not change it.
    #[inline(always)]
    pub(crate) fn offered(&self) -> u64 {
        self.offered
    }

    /// The depth, as [`push_within`](Self::push_within) takes it.
    #[inline(always)]
    pub(crate) fn depth_u8(&self) -> u8 {
        self.depth
    }

    /// Takes every frame out, unsent.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = B> + '_ {
        self.shown = 0;
        self.frames.drain()
    }

    /// Shows `observer` the frames it has not seen yet, then offers the queue
    /// to `port`, which takes frames from the front; the rest stay queued, in
    /// order (already shown). Returns how many the port took.
    #[inline(always)]
    pub(crate) fn offer<P: Port<Buf = B>, T: Observer<B>>(
        &mut self,
        port: &mut P,
        observer: &mut T,
        now_ns: u64,
    ) -> usize {
        for frame in self.frames.as_slice().get(self.shown..).unwrap_or(&[]) {
            observer.on_tx(frame, now_ns);
        }
        let sent = port.tx_burst(&mut self.frames);
        self.shown = self.frames.len();
        sent
    }
}

/// The transmit and host queues a [`Cx`] pushes to, with their counters.
#[derive(Debug)]
pub struct Queues<B> {
    pub(crate) tx: TxQueue<B>,
    pub(crate) host: Burst<B, HOST_QUEUE_LEN>,
    pub(crate) counters: QueueCounters,
}

impl<B> Default for Queues<B> {
    fn default() -> Self {
        Queues {
            tx: TxQueue::new(),
            host: Burst::new(),
            counters: QueueCounters::default(),
        }
    }
}

impl<B> Queues<B> {
    /// Packets waiting for the port.
    pub fn tx_pending(&self) -> usize {
        self.tx.len()
    }
    /// Packets waiting for the host.
    pub fn host_pending(&self) -> usize {
        self.host.len()
    }
    /// The counters.
    pub fn counters(&self) -> &QueueCounters {
        &self.counters
    }

    /// Sends what the port and the host take, showing `observer` the frames
    /// offered to the port. The host queue is emptied: what the host does
    /// not take is dropped and counted, the host path being best effort.
    /// Unsent transmit packets stay queued. Once per iteration, inlined
    /// into the loop like the rest of it.
    #[inline(always)]
    fn flush<P: Port<Buf = B>, H: HostSink<B>, T: Observer<B>>(
        &mut self,
        port: &mut P,
        host: &mut H,
        observer: &mut T,
        now_ns: u64,
    ) -> usize {
        let mut sent = 0;
        if !self.tx.is_empty() {
            sent = self.tx.offer(port, observer, now_ns);
            self.counters.tx_sent += sent as u64;
        }
        if !self.host.is_empty() {
            self.counters.host_sent += host.deliver(&mut self.host) as u64;
            self.counters.host_dropped += self.host.len() as u64;
            self.host.clear();
        }
        sent
    }
}

/// Counters of the loop itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PipelineCounters {
    /// Loop iterations run.
    pub iterations: u64,
    /// Packets received from the port.
    pub rx: u64,
    /// Packets the last stage passed on (freed: there is no next stage).
    pub ended: u64,
}

/// The per-stage counters of one pipeline: per stage, in declaration order,
/// every verdict but `Pass`, and the packets the last stage passed on.
///
/// A pass is not counted as it happens: a packet stage `i` passes on is
/// seen by stage `i + 1`, which settles it, so the passes of stage `i` are
/// the verdicts of every stage after it plus the packets the last stage
/// passed on ([`Runtime::stage`] adds them up).
#[derive(Debug, Clone)]
struct Counts<const K: usize> {
    stages: [StageStats; K],
    ended: u64,
}

impl<const K: usize> Counts<K> {
    /// Stage `index`'s counters, passes included.
    fn stage(&self, index: usize) -> Option<StageStats> {
        let mut stats = self.stages.get(index)?.clone();
        stats.passed = self.stages[index + 1..]
            .iter()
            .map(StageStats::total)
            .sum::<u64>()
            + self.ended;
        Some(stats)
    }
}

/// The counters of one burst, as the generated chain settles its verdicts.
///
/// The chain counts one verdict per packet, where the packet's journey
/// ends, whatever the number of stages; passes are worked out when read
/// (see [`Runtime::stage`]). Transmissions, the usual end of a journey, and
/// the packets the last stage passes on are counted in the chain's own
/// variables and added to the pipeline's counters after the burst: counting
/// them costs a register increment, as in a loop written by hand. A counter
/// in memory would be stored again for every packet, because the loop may
/// call out (to flush a full transmit queue) between two packets.
pub struct Tally<'a, const K: usize> {
    counts: &'a mut Counts<K>,
    transmitted: [u64; K],
    ended: u64,
}

impl<const K: usize> Tally<'_, K> {
    /// Counts stage `index`'s verdict and carries it out; returns the
    /// packet to hand to the next stage, if any.
    #[inline(always)]
    pub fn settle<T, B: PacketBuf, S>(
        &mut self,
        index: usize,
        verdict: Verdict<T, B>,
        cx: &mut Cx<'_, B, S>,
    ) -> Option<T> {
        // The macro passes `0..K`: every index is in range.
        match verdict {
            Verdict::Pass(packet) => Some(packet),
            Verdict::Transmit(buf) => {
                if let Some(n) = self.transmitted.get_mut(index) {
                    *n += 1;
                }
                cx.transmit(buf);
                None
            }
            verdict => settle(verdict, self.counts.stages.get_mut(index)?, cx),
        }
    }

    /// Frees a packet the last stage passed on, counting it.
    #[inline(always)]
    pub fn end<T>(&mut self, packet: T) {
        drop(packet);
        self.ended += 1;
    }

    /// Adds the burst's counts to the pipeline's. Not done on drop: that
    /// would keep the counts in memory too, for the unwinding path, and a
    /// burst in which a stage panicked has no counts worth keeping.
    #[inline(always)]
    fn finish(self) {
        for (i, n) in self.transmitted.into_iter().enumerate() {
            if n != 0 {
                if let Some(stats) = self.counts.stages.get_mut(i) {
                    stats.transmitted += n;
                }
            }
        }
        self.counts.ended += self.ended;
    }
}

/// What one loop iteration did, and when the next one is needed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IterationStats {
    /// Packets received.
    pub rx: usize,
    /// Packets the port accepted at the end-of-iteration flush.
    pub tx: usize,
    /// Other work: events handed to the application, the application's own
    /// work, timers fired.
    pub work: usize,
    /// The earliest time (pipeline clock, ns) a stage's timers or the
    /// application need the loop again, if any: a sleeping worker wakes
    /// for it.
    pub next_deadline_ns: Option<u64>,
}

impl IterationStats {
    /// Whether the iteration received, sent or did anything.
    pub fn busy(&self) -> bool {
        self.rx != 0 || self.tx != 0 || self.work != 0
    }

    /// Everything done, as one number for an idle policy.
    pub fn done(&self) -> usize {
        self.rx + self.tx + self.work
    }
}

/// The phases of an iteration after the receive burst, as the generated
/// loop calls them: the application ([`app`](Self::app)), every stage's
/// protocol output ([`poll`](Self::poll)), every stage's due timers
/// ([`fire_timers`](Self::fire_timers)), then every stage's
/// [`deadline`](Self::deadline), then the state's own work
/// ([`state`](Self::state)). Counts what each stage queues on its own
/// ([`StageStats::originated`]), the work done (events, the app's own work,
/// timers fired) and the earliest deadline, which
/// [`finish`](Self::finish) hands to [`Runtime::flush`].
pub struct Phases<'a, const K: usize> {
    counts: &'a mut Counts<K>,
    work: usize,
    deadline: Option<u64>,
}

impl<const K: usize> Phases<'_, K> {
    /// Deliver and app phases: hands the pending events to `app`'s
    /// handlers, then calls its `poll`.
    #[inline(always)]
    pub fn app<B: PacketBuf, S, A>(&mut self, app: &mut A, cx: &mut Cx<'_, B, S>)
    where
        S: Part<Events>,
        A: App<B, S>,
    {
        self.work += crate::app::deliver(app, cx);
        self.work += app.poll(cx);
        self.deadline = earliest(self.deadline, app.next_deadline());
    }

    /// Protocol output: stage `index`'s `poll`, counting what it queues.
    #[inline(always)]
    pub fn poll<B: PacketBuf, S, T: Stage<B, S>>(
        &mut self,
        index: usize,
        stage: &mut T,
        cx: &mut Cx<'_, B, S>,
    ) {
        let before = cx.port().tx_offered();
        stage.poll(cx);
        self.originated(index, cx.port().tx_offered() - before);
    }

    /// Due timers: stage `index`'s `fire_timers`, counting what it queues
    /// and the timers fired.
    #[inline(always)]
    pub fn fire_timers<B: PacketBuf, S, T: Stage<B, S>>(
        &mut self,
        index: usize,
        stage: &mut T,
        cx: &mut Cx<'_, B, S>,
    ) {
        let before = cx.port().tx_offered();
        self.work += stage.fire_timers(cx);
        self.originated(index, cx.port().tx_offered() - before);
    }

    /// Asks a stage when it next needs its timers fired.
    #[inline(always)]
    pub fn deadline<B: PacketBuf, S, T: Stage<B, S>>(&mut self, stage: &T, cx: &Cx<'_, B, S>) {
        self.deadline = earliest(self.deadline, stage.next_deadline(cx.state()));
    }

    /// The state's own work, after every stage's polls and timers: its
    /// polled parts' output, due timers and deadline ([`PolledState`]),
    /// once per iteration whatever the number of stages sharing them.
    #[inline(always)]
    pub fn state<B: PacketBuf, S: PolledState<B>>(&mut self, cx: &mut Cx<'_, B, S>) {
        S::poll(cx);
        self.work += S::fire_timers(cx);
        self.deadline = earliest(self.deadline, cx.state().next_deadline());
    }

    /// The work done and the earliest deadline.
    #[inline(always)]
    pub fn finish(self) -> (usize, Option<u64>) {
        (self.work, self.deadline)
    }

    #[inline(always)]
    fn originated(&mut self, index: usize, sent: u64) {
        if sent != 0 {
            if let Some(stats) = self.counts.stages.get_mut(index) {
                stats.originated += sent;
            }
        }
    }
}

/// The loop state of a pipeline with buffer type `B`, bursts of `N` packets
/// and `K` stages: the RX burst, the queues and the counters. `#[pipeline]`
/// adds one as a hidden field; read it through the generated `stats()`.
pub struct Runtime<B: PacketBuf, const N: usize, const K: usize> {
    rx: Burst<B, N>,
    queues: Queues<B>,
    /// The port's pool, taken from it at the first iteration: what
    /// `Cx::alloc` allocates from.
    pool: Option<B::Pool>,
    counts: Counts<K>,
    counters: PipelineCounters,
    names: [&'static str; K],
    custom_reasons: [&'static [&'static str]; K],
    time: TimeSource,
}

impl<B: PacketBuf, const N: usize, const K: usize> Runtime<B, N, K> {
    /// Empty state for stages called `names`, whose own drop reasons are
    /// named by `custom_reasons`. Reads time from the real clock
    /// ([`TimeSource::real`]) until given another source with
    /// [`set_time_source`](Self::set_time_source).
    pub fn new(names: [&'static str; K], custom_reasons: [&'static [&'static str]; K]) -> Self {
        Runtime {
            rx: Burst::new(),
            queues: Queues::default(),
            pool: None,
            counts: Counts {
                stages: core::array::from_fn(|_| StageStats::default()),
                ended: 0,
            },
            counters: PipelineCounters::default(),
            names,
            custom_reasons,
            time: TimeSource::real(),
        }
    }

    /// The current time of the pipeline's time source.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.time.now_ns()
    }

    /// Where the pipeline reads its time: what `run_once` passes to the
    /// stages as `cx.now_ns()`.
    pub fn time_source(&self) -> &TimeSource {
        &self.time
    }

    /// Makes the pipeline read its time from `time`: a
    /// [`VirtualClock`](crate::time::VirtualClock) shared with a
    /// [`MemoryWire`](crate::port::memory::MemoryWire) and the stages' timer
    /// wheels, say, so that they all agree on the time.
    pub fn set_time_source(&mut self, time: TimeSource) {
        self.time = time;
    }

    /// The stage names, in order.
    pub fn names(&self) -> &[&'static str; K] {
        &self.names
    }

    /// The counters of the stage called `name`. Its passes are the packets
    /// the stages after it settled plus those the last one passed on: the
    /// loop counts each packet once, where it ends.
    pub fn stage(&self, name: &str) -> Option<StageStats> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.counts.stage(i)
    }

    /// Every stage's name and counters, in order.
    pub fn stages(&self) -> impl Iterator<Item = (&'static str, StageStats)> + '_ {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| Some((*name, self.counts.stage(i)?)))
    }

    /// Every stage's name, counters and drops by reason name, in order:
    /// what a stats export publishes.
    pub fn stage_drops(
        &self,
    ) -> impl Iterator<Item = (&'static str, StageStats, Vec<(&'static str, u64)>)> + '_ {
        self.stages().enumerate().map(|(i, (name, stats))| {
            let custom = self.custom_reasons.get(i).copied().unwrap_or(&[]);
            let drops = stats.drops().map(|(r, n)| (r.name(custom), n)).collect();
            (name, stats, drops)
        })
    }

    /// The loop's own counters.
    pub fn counters(&self) -> PipelineCounters {
        PipelineCounters {
            ended: self.counts.ended,
            ..self.counters
        }
    }

    /// The queues' counters.
    pub fn queue_counters(&self) -> &QueueCounters {
        &self.queues.counters
    }

    /// The queues (for what is still pending).
    pub fn queues(&self) -> &Queues<B> {
        &self.queues
    }

    /// Sets how many frames the transmit queue holds before it is flushed
    /// early (at least 1, at most [`TX_QUEUE_MAX`]; clamped).
    pub fn set_tx_queue_depth(&mut self, depth: usize) {
        self.queues.tx.depth = depth.clamp(1, TX_QUEUE_MAX) as u8;
    }

    /// Loop step 1: receives a burst from `port`, shows it to `observer` and,
    /// if it is not empty, runs `chain` over it (the generated per-packet
    /// code) with a context at time `now_ns` over `state`. Returns how many
    /// packets were received.
    #[inline(always)]
    pub fn receive<P, H, T, S>(
        &mut self,
        port: &mut P,
        host: &mut H,
        observer: &mut T,
        now_ns: u64,
        state: &mut S,
        chain: impl FnOnce(&mut Burst<B, N>, &mut Cx<'_, B, S>, &mut Tally<'_, K>),
    ) -> usize
    where
        P: Port<Buf = B>,
        H: HostSink<B>,
        T: Observer<B>,
    {
        let (rx, ()) = self.iterate(
            port,
            host,
            observer,
            now_ns,
            state,
            (),
            |(), burst, cx, tally| chain(burst, cx, tally),
            |(), _, _| (),
        );
        rx
    }

    /// Loop steps 1 and 2 with one context: receives a burst from `port`,
    /// shows it to `observer` and runs `chain` over it if it is not empty,
    /// as [`receive`](Self::receive) does, then runs `f` as
    /// [`poll`](Self::poll) does, both with the same context over `state`
    /// at time `now_ns` (what the generated loop calls: a context built
    /// once per iteration, not once per step). `stages`, what both steps
    /// work on (the generated loop's stages), is lent to `chain` and then
    /// given to `f`. Returns how many packets were received and what `f`
    /// returned.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn iterate<P, H, T, S, G, R>(
        &mut self,
        port: &mut P,
        host: &mut H,
        observer: &mut T,
        now_ns: u64,
        state: &mut S,
        mut stages: G,
        chain: impl FnOnce(&mut G, &mut Burst<B, N>, &mut Cx<'_, B, S>, &mut Tally<'_, K>),
        f: impl FnOnce(G, &mut Cx<'_, B, S>, Phases<'_, K>) -> R,
    ) -> (usize, R)
    where
        P: Port<Buf = B>,
        H: HostSink<B>,
        T: Observer<B>,
    {
        let rx = port.rx_burst(&mut self.rx);
        self.counters.iterations += 1;
        for frame in self.rx.as_slice() {
            observer.on_rx(frame, now_ns);
        }
        let mut io = Io {
            port,
            host,
            observer,
        };
        let pool = &*self.pool.get_or_insert_with(|| io.port.pool().clone());
        let mut cx = Cx::new(now_ns, &mut self.queues, &mut io, pool, state);
        if !self.rx.is_empty() {
            // Counted here, apart from `iterations`: two adjacent counter
            // adds become one vector add of four instructions more.
            self.counters.rx += rx as u64;
            let mut tally = Tally {
                counts: &mut self.counts,
                transmitted: [0; K],
                ended: 0,
            };
            chain(&mut stages, &mut self.rx, &mut cx, &mut tally);
            tally.finish();
            // A `process_burst` must take every packet; free any it left.
            self.rx.clear();
        }
        let phases = Phases {
            counts: &mut self.counts,
            work: 0,
            deadline: None,
        };
        (rx, f(stages, &mut cx, phases))
    }

    /// Loop step 2: runs `f` (the application's handlers and poll, then the
    /// stages' polls and timers, through the [`Phases`] it is given) with a
    /// context over `port`, `host`, `observer` and `state` at time `now_ns`. What `f` queues is sent at the next
    /// [`flush`](Self::flush).
    #[inline(always)]
    pub fn poll<P, H, T, S, R>(
        &mut self,
        port: &mut P,
        host: &mut H,
        observer: &mut T,
        now_ns: u64,
        state: &mut S,
        f: impl FnOnce(&mut Cx<'_, B, S>, Phases<'_, K>) -> R,
    ) -> R
    where
        P: Port<Buf = B>,
        H: HostSink<B>,
        T: Observer<B>,
    {
        let mut io = Io {
            port,
            host,
            observer,
        };
        let pool = &*self.pool.get_or_insert_with(|| io.port.pool().clone());
        let mut cx = Cx::new(now_ns, &mut self.queues, &mut io, pool, state);
        let phases = Phases {
            counts: &mut self.counts,
            work: 0,
            deadline: None,
        };
        f(&mut cx, phases)
    }

    /// Runs `f` with a context over `port`, `host` and `state` at time
    /// `now_ns`: how a stage or an application is driven outside a
    /// generated loop, in a unit test for instance, and what the generated
    /// `with_cx` uses. What `f` queues waits for
    /// [`drain_tx`](Self::drain_tx) or the next [`flush`](Self::flush).
    #[inline]
    pub fn with_state<P, H, S, R>(
        &mut self,
        port: &mut P,
        host: &mut H,
        now_ns: u64,
        state: &mut S,
        f: impl FnOnce(&mut Cx<'_, B, S>) -> R,
    ) -> R
    where
        P: Port<Buf = B>,
        H: HostSink<B>,
    {
        self.poll(port, host, &mut NoObserver, now_ns, state, |cx, _| f(cx))
    }

    /// Runs `f` with a context over `port` and `host` at time `now_ns`: how
    /// a stage is driven outside a generated loop, in a unit test for
    /// instance. What `f` queues waits for [`drain_tx`](Self::drain_tx) or
    /// the next [`flush`](Self::flush).
    #[inline]
    pub fn with_cx<P, H, R>(
        &mut self,
        port: &mut P,
        host: &mut H,
        now_ns: u64,
        f: impl FnOnce(&mut Cx<'_, B>) -> R,
    ) -> R
    where
        P: Port<Buf = B>,
        H: HostSink<B>,
    {
        self.with_state(port, host, now_ns, &mut (), f)
    }

    /// Takes the packets waiting for the port out of the transmit queue
    /// (counted neither sent nor dropped): for tests of a stage driven with
    /// [`with_cx`](Self::with_cx).
    pub fn drain_tx(&mut self) -> impl Iterator<Item = B> + '_ {
        self.queues.tx.drain()
    }

    /// Takes the packets waiting for the host out of the host queue, as
    /// [`drain_tx`](Self::drain_tx) does for the transmit queue.
    pub fn drain_host(&mut self) -> impl Iterator<Item = B> + '_ {
        self.queues.host.drain()
    }

    /// Loop step 3: sends the transmit queue to `port`, showing `observer` the
    /// frames offered, and the host queue to `host`. `rx` is what
    /// [`receive`](Self::receive) returned, `work` what
    /// [`poll`](Self::poll) did and `next_deadline_ns` when the stages and
    /// the application need the loop next, for the iteration's summary.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn flush<P, H, T>(
        &mut self,
        port: &mut P,
        host: &mut H,
        observer: &mut T,
        now_ns: u64,
        rx: usize,
        work: usize,
        next_deadline_ns: Option<u64>,
    ) -> IterationStats
    where
        P: Port<Buf = B>,
        H: HostSink<B>,
        T: Observer<B>,
    {
        let tx = self.queues.flush(port, host, observer, now_ns);
        IterationStats {
            rx,
            tx,
            work,
            next_deadline_ns,
        }
    }
}

impl<B: PacketBuf, const N: usize, const K: usize> fmt::Display for Runtime<B, N, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counters();
        let q = &self.queues.counters;
        writeln!(
            f,
            "iterations {} rx {} tx {} tx-dropped {} to-host {} host-dropped {} ended {}",
            c.iterations, c.rx, q.tx_sent, q.tx_dropped, q.host_sent, q.host_dropped, c.ended
        )?;
        for (i, (name, s)) in self.stages().enumerate() {
            write!(
                f,
                "  {name}: passed {} consumed {} transmitted {} to-host {}",
                s.passed, s.consumed, s.transmitted, s.to_host
            )?;
            let custom = self.custom_reasons.get(i).copied().unwrap_or(&[]);
            for (reason, n) in s.drops() {
                write!(f, " drop:{} {n}", reason.name(custom))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl<B: PacketBuf, const N: usize, const K: usize> fmt::Debug for Runtime<B, N, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("names", &self.names)
            .field("stages", &self.stages().collect::<Vec<_>>())
            .field("counters", &self.counters())
            .field("queues", &self.queues.counters)
            .finish_non_exhaustive()
    }
}

/// Counts a verdict in `stats` (a pass too) and carries it out; returns the
/// packet to hand to the next stage, if any. For loops outside
/// `#[pipeline]`; the generated chain settles with [`Tally::settle`].
#[inline(always)]
pub fn settle<T, B: PacketBuf, S>(
    verdict: Verdict<T, B>,
    stats: &mut StageStats,
    cx: &mut Cx<'_, B, S>,
) -> Option<T> {
    match verdict {
        Verdict::Pass(packet) => {
            stats.passed += 1;
            Some(packet)
        }
        Verdict::Drop(reason) => {
            stats.count_drop(reason);
            None
        }
        Verdict::Consumed => {
            stats.consumed += 1;
            None
        }
        Verdict::Transmit(buf) => {
            stats.transmitted += 1;
            cx.transmit(buf);
            None
        }
        Verdict::ToHost(buf) => {
            stats.to_host += 1;
            cx.to_host(buf);
            None
        }
    }
}
