//! A `#[pipeline]` with a `#[state]` and an `#[app]`, over an in-memory
//! wire on virtual time: the phases of one iteration run in their fixed
//! order (receive burst → stages → deliver to the app → the app's poll →
//! every stage's poll → due timers → flush), what each stage sends on its
//! own is counted as its `originated`, the iteration reports its work and
//! its next deadline, the first stage sees whole bursts through every
//! combinator, and a worker backing off wakes for the pipeline's timers.

mod pipeline_support;

use core::convert::Infallible;
use std::time::Duration;

use pipeline_support::*;
use tpa::app::{App, Event, EventKind, Events, SocketId, Transport};
use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::pipeline::IterationStats;
use tpa::port::memory::MemoryPort;
use tpa::port::Burst;
use tpa::stage::{Counted, Cx, Demux, Fork, Stage, Verdict};
use tpa::state::{Part, Parts, Polled, PollsPart, State};
use tpa::time::{TimeSource, VirtualClock};
use tpa::worker::{run_loop, IdlePolicy, Progress, StopFlag, WorkLoop};
use tpa_stages::optional::Optional;

/// What happened, in order, as the stages and the app saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The first stage got a burst of this many frames.
    Burst(usize),
    /// An arm raised a readable event on this socket.
    Raised(u32),
    /// The app handled a readable event on this socket.
    Handled(u32),
    /// The app's own poll ran.
    AppPolled,
    /// The talker's poll sent a frame.
    Polled,
    /// The timer fired at this time.
    Fired(u64),
}

/// The pipeline state's log part.
#[derive(Debug, Default)]
struct Log(Vec<Step>);

#[derive(State, Default)]
struct AppState {
    events: Events,
    log: Log,
}

/// Frames the pipeline sends start with one of these.
const APP_REPLY: u8 = b'A';
const POLL_FRAME: u8 = b'P';
const TIMER_FRAME: u8 = b'T';

/// Queues a frame `[tag, detail]` from the port's pool.
fn send_frame<B: PacketBuf, S>(cx: &mut Cx<'_, B, S>, tag: u8, detail: u8) {
    let mut frame = cx.alloc().expect("the pool has room");
    frame
        .append(2)
        .expect("two bytes fit")
        .copy_from_slice(&[tag, detail]);
    cx.transmit(frame);
}

/// Records the size of every burst it is given whole, and passes each
/// frame on; `process` alone records nothing, so a combinator that does
/// not hand the burst on leaves `sizes` empty.
#[derive(Default)]
struct Bursts {
    sizes: Vec<usize>,
    one_by_one: usize,
}

impl<B: PacketBuf, S: Part<Log>> Stage<B, S> for Bursts {
    type In = B;
    type Out = B;
    fn process(&mut self, frame: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        self.one_by_one += 1;
        Verdict::Pass(frame)
    }
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<B, N>,
        cx: &mut Cx<'_, B, S>,
        mut next: impl FnMut(Verdict<B, B>, &mut Cx<'_, B, S>),
    ) {
        self.sizes.push(burst.len());
        cx.part::<Log>().0.push(Step::Burst(burst.len()));
        for frame in burst.drain() {
            next(Verdict::Pass(frame), cx);
        }
    }
}

/// Frames whose first byte is even go left, odd right.
struct ByParity;
impl<B: PacketBuf, S> Stage<B, S> for ByParity {
    type In = B;
    type Out = Fork<B, B>;
    fn process(&mut self, frame: B, _: &mut Cx<'_, B, S>) -> Verdict<Fork<B, B>, B> {
        match frame.data().first() {
            Some(b) if b % 2 == 0 => Verdict::Pass(Fork::Left(frame)),
            _ => Verdict::Pass(Fork::Right(frame)),
        }
    }
}

/// Consumes each frame and raises a readable event on its socket, as a
/// protocol stage does for a datagram.
struct Raise(u32);
impl<B: PacketBuf, S: Parts<(Events, Log)>> Stage<B, S> for Raise {
    type In = B;
    type Out = Infallible;
    fn process(&mut self, _frame: B, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        let ((events, log), _) = cx.parts::<(Events, Log)>();
        let socket = SocketId::new(Transport::Udp, self.0, 0);
        assert!(events.push(Event {
            socket,
            kind: EventKind::Readable,
        }));
        log.0.push(Step::Raised(self.0));
        Verdict::Consumed
    }
}

/// The front: a chain whose first stage is a demux whose classifier is a
/// chain whose first stage is a counted, optional burst recorder.
type Front = (
    Demux<(Counted<Optional<Bursts>>, ByParity), Raise, Raise>,
    Nothing,
);

fn front() -> Front {
    (
        Demux::new(
            (Counted::new(Optional::on(Bursts::default())), ByParity),
            Raise(0),
            Raise(1),
        ),
        Nothing,
    )
}

/// Ends the front's chain: nothing reaches it (the arms consume all).
struct Nothing;
impl<B: PacketBuf, S> Stage<B, S> for Nothing {
    type In = Infallible;
    type Out = Infallible;
    fn process(&mut self, input: Infallible, _: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        match input {}
    }
}

/// Protocol output: after the app ran, sends one frame per poll in which
/// events were raised since the last (an acknowledgement, say).
#[derive(Default)]
struct Talker {
    seen: u64,
}
impl<B: PacketBuf, S: Part<Events> + Part<Log>> Stage<B, S> for Talker {
    type In = Infallible;
    type Out = Infallible;
    fn process(&mut self, input: Infallible, _: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        match input {}
    }
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        let raised = cx.part::<Events>().raised();
        if raised != self.seen {
            self.seen = raised;
            cx.part::<Log>().0.push(Step::Polled);
            send_frame(cx, POLL_FRAME, raised as u8);
        }
    }
}

/// Sends a frame at each of its deadlines, in order.
struct Timer {
    deadlines: Vec<u64>,
}
impl<B: PacketBuf, S: Part<Log>> Stage<B, S> for Timer {
    type In = Infallible;
    type Out = Infallible;
    fn process(&mut self, input: Infallible, _: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        match input {}
    }
    fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        let now = cx.now_ns();
        let due = self.deadlines.iter().take_while(|&&d| d <= now).count();
        for _ in 0..due {
            self.deadlines.remove(0);
            cx.part::<Log>().0.push(Step::Fired(now));
            send_frame(cx, TIMER_FRAME, 0);
        }
        due
    }
    fn next_deadline(&self, _state: &S) -> Option<u64> {
        self.deadlines.first().copied()
    }
}

/// Answers every readable socket with a frame naming it.
#[derive(Default)]
struct Replier {
    handled: u64,
}
impl<B: PacketBuf, S: Part<Events> + Part<Log>> App<B, S> for Replier {
    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        self.handled += 1;
        cx.part::<Log>().0.push(Step::Handled(socket.index));
        send_frame(cx, APP_REPLY, socket.index as u8);
    }
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        cx.part::<Log>().0.push(Step::AppPolled);
        0
    }
}

#[pipeline]
struct Phased {
    #[port]
    port: MemoryPort,
    #[state]
    state: AppState,
    #[app]
    app: Replier,
    front: Front,
    talker: Talker,
    timer: Timer,
}

const MS: u64 = 1_000_000;

/// The pipeline on a virtual clock at 0, with timers at 1 ms and 3 ms, and
/// the wire's other end.
fn phased() -> (Phased, MemoryPort, VirtualClock) {
    let (port, peer) = wire();
    let clock = VirtualClock::new();
    let pipe = Phased::new(
        port,
        AppState::default(),
        Replier::default(),
        front(),
        Talker::default(),
        Timer {
            deadlines: vec![MS, 3 * MS],
        },
    )
    .with_time_source(TimeSource::from(clock.clone()));
    (pipe, peer, clock)
}

/// The log since the last call.
fn take_log(pipe: &mut Phased) -> Vec<Step> {
    std::mem::take(&mut pipe.state.log.0)
}

#[test]
fn one_iteration_runs_its_phases_in_order() {
    let (mut pipe, mut peer, clock) = phased();

    // Three frames at 0: sockets 0, 1, 0.
    send(&mut peer, &[vec![0], vec![1], vec![2]]);
    let it = pipe.run_once();
    assert_eq!(
        it,
        IterationStats {
            rx: 3,
            tx: 4,
            work: 3, // three events handled; no timer due
            next_deadline_ns: Some(MS),
        }
    );
    assert_eq!(
        take_log(&mut pipe),
        [
            Step::Burst(3),
            Step::Raised(0),
            Step::Raised(1),
            Step::Raised(0),
            Step::Handled(0),
            Step::Handled(1),
            Step::Handled(0),
            Step::AppPolled,
            Step::Polled,
        ]
    );
    // The app's replies first, then what the stage's poll sent.
    assert_eq!(
        receive(&mut peer),
        [
            vec![APP_REPLY, 0],
            vec![APP_REPLY, 1],
            vec![APP_REPLY, 0],
            vec![POLL_FRAME, 3],
        ]
    );

    // At the first deadline, exactly, two more frames.
    clock.advance_to(MS);
    send(&mut peer, &[vec![5], vec![4]]);
    let it = pipe.run_once();
    assert_eq!(
        it,
        IterationStats {
            rx: 2,
            tx: 4,
            work: 3, // two events and one timer
            next_deadline_ns: Some(3 * MS),
        }
    );
    assert_eq!(
        take_log(&mut pipe),
        [
            Step::Burst(2),
            Step::Raised(1),
            Step::Raised(0),
            Step::Handled(1),
            Step::Handled(0),
            Step::AppPolled,
            Step::Polled,
            Step::Fired(MS),
        ]
    );
    // App replies, then protocol output, then the timer's frame.
    assert_eq!(
        receive(&mut peer),
        [
            vec![APP_REPLY, 1],
            vec![APP_REPLY, 0],
            vec![POLL_FRAME, 5],
            vec![TIMER_FRAME, 0],
        ]
    );

    // Between deadlines with nothing received: idle, the deadline stands.
    clock.advance_to(2 * MS);
    let it = pipe.run_once();
    assert_eq!(
        it,
        IterationStats {
            rx: 0,
            tx: 0,
            work: 0,
            next_deadline_ns: Some(3 * MS),
        }
    );
    assert!(!it.busy());
    assert_eq!(take_log(&mut pipe), [Step::AppPolled]);

    // Past the last deadline: the timer alone, then no deadline.
    clock.advance_to(3 * MS + 7);
    let it = pipe.run_once();
    assert_eq!(
        it,
        IterationStats {
            rx: 0,
            tx: 1,
            work: 1,
            next_deadline_ns: None,
        }
    );
    assert_eq!(
        take_log(&mut pipe),
        [Step::AppPolled, Step::Fired(3 * MS + 7)]
    );
    assert_eq!(receive(&mut peer), [vec![TIMER_FRAME, 0]]);

    // What each stage sent on its own is its `originated`; the front sent
    // nothing of its own and transmitted nothing it received.
    let stats = pipe.stats();
    let originated = |name| stats.stage(name).unwrap().originated;
    assert_eq!(
        (
            originated("front"),
            originated("talker"),
            originated("timer")
        ),
        (0, 2, 2)
    );
    let front = stats.stage("front").unwrap();
    assert_eq!((front.consumed, front.transmitted), (5, 0));
    assert_eq!(stats.queue_counters().tx_sent, 9);
    assert_eq!(pipe.app.handled, 5);
    assert_eq!(pipe.state.events.raised(), 5);
    assert!(pipe.state.events.is_empty());

    // The burst reached the recorder whole, through the chain, the demux,
    // the classifier's chain, `Counted` and `Optional`.
    let classify = &pipe.front.0.classify.0;
    let bursts = classify.stage.inner().unwrap();
    assert_eq!(bursts.sizes, [3, 2]);
    assert_eq!(bursts.one_by_one, 0, "never called packet by packet");
    assert_eq!(classify.stats.passed, 5);

    drop(pipe);
    assert_wire_whole(peer);
}

#[test]
fn a_switched_off_first_stage_passes_whole_bursts_on() {
    let (port, mut peer) = wire();
    let mut pipe = Phased::new(
        port,
        AppState::default(),
        Replier::default(),
        (
            Demux::new(
                (Counted::new(Optional::off()), ByParity),
                Raise(0),
                Raise(1),
            ),
            Nothing,
        ),
        Talker::default(),
        Timer {
            deadlines: Vec::new(),
        },
    );
    send(&mut peer, &[vec![0], vec![1]]);
    let it = pipe.run_once();
    assert_eq!(
        (it.rx, it.tx, it.work, it.next_deadline_ns),
        (2, 3, 2, None)
    );
    assert_eq!(pipe.front.0.classify.0.stats.passed, 2);
    assert_eq!(pipe.app.handled, 2);
    drop(pipe);
    receive(&mut peer);
    assert_wire_whole(peer);
}

/// The pipeline as a worker's loop on its virtual clock: sleeping moves
/// the clock by what the idle policy asked for.
struct Virtual {
    pipe: Phased,
    clock: VirtualClock,
    stop: StopFlag,
    /// (sleep asked for, time to the pipeline's next deadline when asked).
    naps: Vec<(Duration, u64)>,
}

impl WorkLoop for Virtual {
    type Report = Vec<(Duration, u64)>;
    fn run_once(&mut self) -> Progress {
        let it = self.pipe.run_once();
        if it.next_deadline_ns.is_none() {
            self.stop.raise();
        }
        it.into()
    }
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
    fn sleep(&mut self, duration: Duration) {
        let now = self.clock.now_ns();
        let deadline = self.pipe.timer.deadlines.first().copied();
        let gap = deadline.expect("asleep only with a timer pending") - now;
        self.naps.push((duration, gap));
        self.clock.advance(duration);
    }
    fn finish(self) -> Self::Report {
        self.naps
    }
}

#[test]
fn a_backing_off_worker_fires_the_pipelines_timers_on_time() {
    let (pipe, mut peer, clock) = phased();
    let stop = StopFlag::new();
    let mut work = Virtual {
        pipe,
        clock,
        stop: stop.clone(),
        naps: Vec::new(),
    };
    let sleep = Duration::from_micros(300);
    let stats = run_loop(&mut work, &stop, IdlePolicy::Backoff { after: 4, sleep });
    let fired: Vec<Step> = take_log(&mut work.pipe)
        .into_iter()
        .filter(|s| matches!(s, Step::Fired(_)))
        .collect();
    // Each timer fired in the iteration at its deadline exactly: no sleep
    // carried the loop past one.
    assert_eq!(fired, [Step::Fired(MS), Step::Fired(3 * MS)]);
    let naps = work.finish();
    // Every sleep asked for was at most the policy's and at most the time
    // left to the next deadline.
    for &(nap, gap) in &naps {
        assert!(nap <= sleep, "{nap:?} > {sleep:?}");
        assert!(
            nap.as_nanos() <= u128::from(gap),
            "{nap:?} past a gap of {gap} ns"
        );
    }
    // 0 → 1 ms: 300 µs thrice, then cut to 100; 1 → 3 ms: 300 six times,
    // then cut to 200.
    let asked: Vec<u128> = naps.iter().map(|(n, _)| n.as_micros()).collect();
    assert_eq!(
        asked,
        [300, 300, 300, 100, 300, 300, 300, 300, 300, 300, 200]
    );
    assert_eq!(stats.sleeps_cut_by_deadline, 2);
    assert_eq!(stats.busy_iterations, 2, "the two timer firings were work");
    assert_eq!(
        receive(&mut peer),
        [vec![TIMER_FRAME, 0], vec![TIMER_FRAME, 0]]
    );
    assert_wire_whole(peer);
}

/// The same front without an `#[app]`: the application owns its loop.
#[pipeline]
struct Owned {
    #[port]
    port: MemoryPort,
    #[state]
    state: AppState,
    front: Front,
}

#[test]
fn an_application_owning_its_loop_drains_events_between_iterations() {
    let (port, mut peer) = wire();
    let mut pipe = Owned::new(port, AppState::default(), front());
    send(&mut peer, &[vec![1], vec![2]]);
    let it = pipe.run_once();
    // No app: the events wait in the state, and are not counted as work.
    assert_eq!((it.rx, it.tx, it.work), (2, 0, 0));
    assert_eq!(pipe.state.events.len(), 2);

    // The poll-style handle: between iterations, read the events and reply.
    let replied = pipe.with_cx(|cx| {
        let mut replied = Vec::new();
        while let Some(event) = cx.part::<Events>().pop() {
            assert_eq!(event.kind, EventKind::Readable);
            send_frame(cx, APP_REPLY, event.socket.index as u8);
            replied.push(event.socket.index);
        }
        replied
    });
    assert_eq!(replied, [1, 0]);
    assert!(receive(&mut peer).is_empty(), "queued, not yet flushed");
    // The replies leave at the next iteration's flush.
    let it = pipe.run_once();
    assert_eq!((it.rx, it.tx), (0, 2));
    assert_eq!(receive(&mut peer), [vec![APP_REPLY, 1], vec![APP_REPLY, 0]]);
    drop(pipe);
    assert_wire_whole(peer);
}

/// A shared table with work once per iteration (as TCP's sockets): counts
/// its polls and timer rounds, sends a frame per poll while output is
/// pending, and has a timer at a fixed time.
#[derive(Debug, Default)]
struct Shared {
    polls: u64,
    timer_rounds: u64,
    pending: u8,
    deadline: Option<u64>,
}

impl<B: PacketBuf, S: Part<Shared>> Polled<B, S> for Shared {
    fn poll(cx: &mut Cx<'_, B, S>) {
        let shared = cx.part::<Shared>();
        shared.polls += 1;
        let pending = core::mem::take(&mut shared.pending);
        for _ in 0..pending {
            send_frame(cx, POLL_FRAME, 0);
        }
    }
    fn fire_timers(cx: &mut Cx<'_, B, S>) -> usize {
        let now = cx.now_ns();
        let shared = cx.part::<Shared>();
        shared.timer_rounds += 1;
        match shared.deadline {
            Some(at) if at <= now => {
                shared.deadline = None;
                send_frame(cx, TIMER_FRAME, 0);
                1
            }
            _ => 0,
        }
    }
    fn next_deadline(state: &S) -> Option<u64> {
        state.part().deadline
    }
}

#[derive(State, Default)]
struct SharedState {
    events: Events,
    #[polled]
    shared: Shared,
}

/// An input stage over the shared table (as the IPv4 and IPv6 branches'
/// TCP inputs): it asks for output, and leaves it to the state's poll.
struct SharedInput;
impl<B: PacketBuf, S: Part<Shared> + PollsPart<Shared>> Stage<B, S> for SharedInput {
    type In = B;
    type Out = Infallible;
    fn process(&mut self, _frame: B, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        cx.part::<Shared>().pending += 1;
        Verdict::Consumed
    }
}

#[pipeline]
struct TwoInputs {
    #[port]
    port: MemoryPort,
    #[state]
    state: SharedState,
    first: Demux<ByParity, Counted<SharedInput>, Counted<SharedInput>>,
}

#[test]
fn a_part_two_stages_share_is_polled_once_per_iteration() {
    let (port, mut peer) = wire();
    let state = SharedState {
        shared: Shared {
            deadline: Some(2 * MS),
            ..Shared::default()
        },
        ..SharedState::default()
    };
    let inputs = Demux::new(
        ByParity,
        Counted::new(SharedInput),
        Counted::new(SharedInput),
    );
    let clock = VirtualClock::new();
    let mut pipe =
        TwoInputs::new(port, state, inputs).with_time_source(TimeSource::from(clock.clone()));
    // Both stages take a frame: one poll sends both answers.
    send(&mut peer, &[vec![1], vec![2]]);
    let it = pipe.run_once();
    assert_eq!((it.rx, it.tx, it.work), (2, 2, 0));
    assert_eq!(it.next_deadline_ns, Some(2 * MS));
    assert_eq!(
        receive(&mut peer),
        [vec![POLL_FRAME, 0], vec![POLL_FRAME, 0]]
    );
    // The timer fires once, at its time.
    clock.advance_to(2 * MS);
    let it = pipe.run_once();
    assert_eq!(
        (it.rx, it.tx, it.work, it.next_deadline_ns),
        (0, 1, 1, None)
    );
    assert_eq!(receive(&mut peer), [vec![TIMER_FRAME, 0]]);
    pipe.run_once();
    let shared = &pipe.state.shared;
    assert_eq!((shared.polls, shared.timer_rounds), (3, 3));
    drop(pipe);
    assert_wire_whole(peer);
}
