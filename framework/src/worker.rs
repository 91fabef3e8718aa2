//! Workers: one pipeline per pinned thread, shared-nothing.
//!
//! A worker is a thread pinned to one core that builds its own pipeline (its
//! own port queue, pool, tables and timers: nothing is shared with other
//! workers) and runs it until a shared [`StopFlag`] is raised, then hands
//! back a report. The runtime does not know the pipeline type: anything that
//! implements [`WorkLoop`] will do, including a plain closure returning the
//! work done (`FnMut() -> usize`) or a pipeline's
//! [`IterationStats`] (`FnMut() -> IterationStats`).
//!
//! ```no_run
//! use tpa::worker::{run_workers, StopFlag, WorkerConfig};
//!
//! let stop = StopFlag::new();
//! stop.stop_on_signals().expect("install SIGINT/SIGTERM handlers");
//! let config = WorkerConfig::on_cores(vec![0, 1]).stop_flag(stop);
//! let reports = run_workers(&config, |ctx| {
//!     // Build this worker's pipeline here (open queue `ctx.index` of a port…).
//!     let mut packets = 0usize;
//!     Ok::<_, std::io::Error>(move || {
//!         packets += 1;
//!         0usize // nothing done this iteration
//!     })
//! })
//! .expect("workers ran");
//! for r in &reports {
//!     println!("worker {} on core {:?}: {} iterations", r.index, r.core, r.stats.iterations);
//! }
//! ```
//!
//! A `#[pipeline]` struct becomes a work loop through a closure over its
//! generated `run_once`: `move || pipeline.run_once()`. Its
//! [`IterationStats`] carry the work done (packets, events, timers fired)
//! and the stages' next timer deadline, so a worker that backs off sleeps
//! no later than that deadline ([`IdlePolicy::Backoff`]). The same loop can
//! run on the caller's own thread with [`run_loop`] (principle 1: tpa can
//! live inside the application's thread).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::pipeline::IterationStats;
use crate::port::RxWait;
use crate::time::Clock;

/// What one iteration of a [`WorkLoop`] tells the idle policy.
///
/// ```
/// use tpa::pipeline::IterationStats;
/// use tpa::worker::Progress;
///
/// assert_eq!(Progress::from(3usize), Progress { work: 3, received: 0, next_deadline_ns: None });
/// let iteration = IterationStats { rx: 2, tx: 1, work: 1, next_deadline_ns: Some(7_000) };
/// assert_eq!(
///     Progress::from(iteration),
///     Progress { work: 4, received: 2, next_deadline_ns: Some(7_000) }
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// How much work the iteration did (packets received and sent, events
    /// handled, timers fired); 0 means it was idle.
    pub work: usize,
    /// The frames received among `work`: what [`IdlePolicy::Wait`]'s
    /// `coalesce` tells a stream by.
    pub received: usize,
    /// When the loop next needs to run whatever arrives, in nanoseconds of
    /// the loop's clock ([`WorkLoop::now_ns`]): its earliest timer. A
    /// worker backing off does not sleep past it.
    pub next_deadline_ns: Option<u64>,
}

impl From<usize> for Progress {
    /// Work without a deadline.
    #[inline]
    fn from(work: usize) -> Self {
        Progress {
            work,
            received: 0,
            next_deadline_ns: None,
        }
    }
}

impl From<IterationStats> for Progress {
    /// A pipeline iteration: everything it did (received, sent, events,
    /// timers fired: [`IterationStats::done`]), what it received and its
    /// next deadline.
    #[inline]
    fn from(iteration: IterationStats) -> Self {
        Progress {
            work: iteration.done(),
            received: iteration.rx,
            next_deadline_ns: iteration.next_deadline_ns,
        }
    }
}

/// One iteration of a worker's loop: receive, process, transmit, timers.
///
/// Implemented for every closure returning the work done, as a `usize` or
/// as a pipeline's [`IterationStats`] (anything `Into<Progress>`), with a
/// `()` report: a closure calling a pipeline's own `run_once` is enough.
/// Implement it on a type of one's own to hand back counters when the
/// worker stops, or to run on a clock other than the real one.
pub trait WorkLoop {
    /// What the worker hands back when it stops (counters, state).
    type Report: Send;

    /// Runs one iteration and returns how much work it did (packets handled,
    /// timers fired; 0 means it was idle, which lets the worker back off)
    /// and when it next needs to run for its timers.
    fn run_once(&mut self) -> Progress;

    /// The current time on the clock the loop's deadlines are read on, in
    /// nanoseconds. The default is the process-wide [`Clock::global`], the
    /// clock of a pipeline left on real time
    /// ([`TimeSource::real`](crate::time::TimeSource::real)); a loop on
    /// another source (a virtual clock) returns that source's time.
    #[inline]
    fn now_ns(&self) -> u64 {
        Clock::global().now_ns()
    }

    /// Waits `duration` with nothing to do (the idle policy's back-off,
    /// already cut short at the next deadline). The default sleeps the
    /// thread; a loop on virtual time moves its clock instead, and a loop
    /// that can block on its port may wait for a packet or the time,
    /// whichever comes first.
    #[inline]
    fn sleep(&mut self, duration: Duration) {
        thread::sleep(duration);
    }

    /// Blocks up to `timeout` until the loop's port has a frame to receive
    /// ([`Port::wait_rx`](crate::port::Port::wait_rx), the receive
    /// interrupt mode), for [`IdlePolicy::Wait`]. The default cannot
    /// ([`RxWait::Unsupported`]), and the policy sleeps instead; a loop
    /// over a pipeline forwards to its port (a `#[pipeline]`'s generated
    /// `wait_rx`).
    #[inline]
    fn wait_rx(&mut self, timeout: Duration) -> RxWait {
        let _ = timeout;
        RxWait::Unsupported
    }

    /// A new idle policy to follow from now on, if one was asked for
    /// since the last call (a runtime knob: `tpactl cfg idle`).
    /// [`run_loop`] asks only after an iteration that found nothing to
    /// do, so the busy path never pays for it. The default: never.
    #[inline]
    fn idle_change(&mut self) -> Option<IdlePolicy> {
        None
    }

    /// Called once after the stop flag was seen; turns the loop into its
    /// report (flushing, closing files and freeing buffers on the way).
    fn finish(self) -> Self::Report;
}

impl<F, R> WorkLoop for F
where
    F: FnMut() -> R,
    R: Into<Progress>,
{
    type Report = ();

    #[inline]
    fn run_once(&mut self) -> Progress {
        self().into()
    }

    fn finish(self) {}
}

/// A flag all workers poll to know when to stop; cheap to clone (one `Arc`).
///
/// ```
/// use tpa::worker::StopFlag;
/// let stop = StopFlag::new();
/// let seen_by_worker = stop.clone();
/// assert!(!seen_by_worker.is_raised());
/// stop.raise();
/// assert!(seen_by_worker.is_raised());
/// ```
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

/// The flag the signal handler raises (a leaked `Arc` reference).
static SIGNAL_FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_stop_signal(signal: libc::c_int) {
    let flag = SIGNAL_FLAG.load(Ordering::Acquire);
    if flag.is_null() {
        return;
    }
    // SAFETY: the pointer comes from `Arc::into_raw` in `stop_on_signals` and
    // that reference is never released, so the flag lives for the rest of
    // the process. An atomic swap is async-signal-safe.
    let already = unsafe { (*flag).swap(true, Ordering::AcqRel) };
    if already {
        // A second signal while stopping: the user insists. `_exit` is
        // async-signal-safe; 128 + signal is the shell's convention.
        // SAFETY: ends the process without running any non-reentrant code.
        unsafe { libc::_exit(128 + signal) };
    }
}

impl StopFlag {
    /// A lowered flag.
    pub fn new() -> Self {
        StopFlag::default()
    }

    /// Asks every worker polling this flag to stop after its current
    /// iteration.
    #[inline]
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    #[inline]
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag as the `AtomicBool` a `#[pipeline]`'s generated `run` polls.
    #[inline]
    pub fn as_atomic(&self) -> &AtomicBool {
        &self.0
    }

    /// Raises this flag on SIGINT (Ctrl-C) and SIGTERM; a second such signal
    /// while the workers are stopping ends the process at once. Replaces the
    /// flag a previous call installed.
    pub fn stop_on_signals(&self) -> io::Result<()> {
        let raw = Arc::into_raw(Arc::clone(&self.0)).cast_mut();
        // The previous flag (if any) stays leaked: a handler running right
        // now on another thread may still be using it.
        SIGNAL_FLAG.store(raw, Ordering::Release);
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed `sigaction` is a valid starting value; we set
            // the handler and an empty mask, and pass valid pointers.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

/// What a worker does when an iteration found nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll again at once: lowest latency, one core at 100%.
    Spin,
    /// After `after` idle iterations in a row, sleep `sleep` between
    /// iterations until work shows up again: for shared machines, laptops
    /// and tests. A sleep never lasts past the loop's next deadline
    /// ([`Progress::next_deadline_ns`]): a timer due in 10 µs cuts a 50 µs
    /// sleep to 10 µs, and a timer already due means no sleep at all.
    Backoff {
        /// Idle iterations in a row before the first sleep.
        after: u32,
        /// How long each sleep lasts at most.
        sleep: Duration,
    },
    /// Poll on for `spin` of the loop's clock after the last iteration
    /// that did work, then block until the port has a frame, the loop's
    /// next deadline comes or `max` has passed, whichever is first
    /// ([`WorkLoop::wait_rx`]: the port's receive interrupt mode, like
    /// DPDK's Rx interrupts): no CPU spent polling an empty port while the
    /// peer is the bottleneck, and no blind sleep making the first frame
    /// after a pause wait. A frame arriving while the loop still spins is
    /// taken at once; one ending a wait pays a wake-up (a few
    /// microseconds), which a `spin` a little longer than the peer takes
    /// to answer saves on a loop with a core of its own; where cores are
    /// shared with other busy threads, spinning delays the peer and the
    /// loop's own wake-ups, and a zero `spin` measured faster. A
    /// loop whose port cannot block sleeps as [`IdlePolicy::Backoff`]
    /// would, `max` at most and never more than [`WAIT_FALLBACK_SLEEP`] at
    /// a time. The spin is measured on [`WorkLoop::now_ns`]: a loop on a
    /// virtual clock that never moves spins until it is stopped.
    ///
    /// With `adaptive`, `spin` is a bound and the loop spins for a share
    /// of it that follows the gaps it sees, as KVM's halt polling does: a
    /// wait that a frame ended within `spin` of the last work means a
    /// longer spin would have taken that frame by polling, and doubles
    /// the share (from an eighth of `spin`, up to `spin`); a wait that
    /// lasted past `spin` (the peer slow to answer, or nothing coming)
    /// means spinning was spent for nothing, and halves it. A loop whose
    /// peer answers within the bound ends up spinning; one whose peer
    /// needs longer blocks almost at once.
    ///
    /// With a non-zero `coalesce`, the loop moderates its receive
    /// interrupts as a NIC's driver does (`ethtool -C`'s `rx-usecs`): when
    /// busy iterations back to back that received [`COALESCE_AFTER_FRAMES`]
    /// or more together ([`Progress::received`]: a stream arriving, not a
    /// request) are followed by one that found nothing, the loop sleeps
    /// `coalesce` (cut at its next deadline) instead of spinning or
    /// blocking on the port. The frames that come meanwhile gather in the
    /// port's ring and are taken as one burst, and a peer on this machine
    /// pays no wake-up for them: with AF_PACKET's frame ring each frame
    /// that ends a wait wakes the loop from the sender's own transmit.
    /// Iterations receiving less (one request, one answer) never coalesce,
    /// so one connection's request-response latency is the spin's and the
    /// wait's as without it; a stream's next frames, or those of many
    /// connections' requests close together, wait `coalesce` at most (plus
    /// the kernel's timer slack).
    Wait {
        /// How long to poll on after the last work before the first wait
        /// (with `adaptive`: at most).
        spin: Duration,
        /// Whether the spin follows the gaps between frames (see above).
        adaptive: bool,
        /// How long one wait lasts at most (the loop's own checks, such as
        /// its stop flag, run that often while idle).
        max: Duration,
        /// How long to sleep when the port runs dry after a stream's busy
        /// iterations, letting its frames gather (zero: never; see above).
        coalesce: Duration,
    },
}

/// The frames busy iterations back to back receive
/// ([`Progress::received`]) from which [`IdlePolicy::Wait`]'s `coalesce`
/// takes the port's running dry after them as a stream's pause: a quarter
/// of a 32-frame burst. A request (or a connection's handshake, one frame
/// per round trip) stays under it.
pub const COALESCE_AFTER_FRAMES: usize = 8;

/// The longest sleep of [`IdlePolicy::Wait`] on a loop that cannot block
/// on its port.
pub const WAIT_FALLBACK_SLEEP: Duration = Duration::from_micros(50);

impl IdlePolicy {
    /// How long [`IdlePolicy::wait`] polls on after the last work: none.
    /// On a machine whose cores are shared (more runnable threads than
    /// cores), a loop that spins before it blocks answered later than one
    /// that blocks at once, in request-response and in bulk: a thread
    /// woken by its frame is scheduled ahead of one that used its share
    /// spinning (doc/benchmarks.md, "Spinning before a wait"). A loop with
    /// a core of its own spins with [`IdlePolicy::wait_with_adaptive_spin`]
    /// (tperf's `--idle wait:~50`) or [`IdlePolicy::Spin`].
    pub const DEFAULT_SPIN: Duration = Duration::ZERO;

    /// [`IdlePolicy::Wait`] after [`IdlePolicy::DEFAULT_SPIN`] of polling,
    /// a millisecond at most per wait.
    pub const fn wait() -> IdlePolicy {
        IdlePolicy::wait_with_spin(IdlePolicy::DEFAULT_SPIN)
    }

    /// [`IdlePolicy::Wait`] after `spin` of polling, a millisecond at most
    /// per wait.
    pub const fn wait_with_spin(spin: Duration) -> IdlePolicy {
        IdlePolicy::Wait {
            spin,
            adaptive: false,
            max: Duration::from_millis(1),
            coalesce: Duration::ZERO,
        }
    }

    /// [`IdlePolicy::Wait`] after an adaptive spin of `spin` at most, a
    /// millisecond at most per wait.
    pub const fn wait_with_adaptive_spin(spin: Duration) -> IdlePolicy {
        IdlePolicy::Wait {
            spin,
            adaptive: true,
            max: Duration::from_millis(1),
            coalesce: Duration::ZERO,
        }
    }

    /// This policy with [`IdlePolicy::Wait`]'s `coalesce` set to `delay`
    /// (zero: off); other policies are returned as they are.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tpa::worker::IdlePolicy;
    /// let p = IdlePolicy::wait().coalescing(Duration::from_micros(50));
    /// assert!(matches!(p, IdlePolicy::Wait { coalesce, .. } if coalesce == Duration::from_micros(50)));
    /// assert_eq!(IdlePolicy::Spin.coalescing(Duration::from_micros(50)), IdlePolicy::Spin);
    /// ```
    pub const fn coalescing(self, delay: Duration) -> IdlePolicy {
        match self {
            IdlePolicy::Wait {
                spin,
                adaptive,
                max,
                ..
            } => IdlePolicy::Wait {
                spin,
                adaptive,
                max,
                coalesce: delay,
            },
            other => other,
        }
    }
}

/// The longest spin `wait:N` takes, in microseconds (a second: past that,
/// `spin` says it better).
const MAX_SPIN_US: u64 = 1_000_000;

/// The longest `coalesce` `wait…,coalesce:N` takes, in microseconds (a
/// wait's own longest, a millisecond).
const MAX_COALESCE_US: u64 = 1_000;

impl core::str::FromStr for IdlePolicy {
    type Err = String;

    /// `spin`; `sleep` ([`IdlePolicy::default`]); `wait`
    /// ([`IdlePolicy::wait`]); `wait:N` (N µs of spin,
    /// [`IdlePolicy::wait_with_spin`]); `wait:~N` (an adaptive N µs at
    /// most, [`IdlePolicy::wait_with_adaptive_spin`]); any of the waits
    /// followed by `,coalesce:N` (N µs, [`IdlePolicy::coalescing`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tpa::worker::IdlePolicy;
    /// let p: IdlePolicy = "wait:~50".parse().unwrap();
    /// assert_eq!(p, IdlePolicy::wait_with_adaptive_spin(Duration::from_micros(50)));
    /// assert_eq!(p.to_string(), "wait:~50");
    /// let c: IdlePolicy = "wait:~50,coalesce:40".parse().unwrap();
    /// assert_eq!(c, p.coalescing(Duration::from_micros(40)));
    /// assert_eq!(c.to_string(), "wait:~50,coalesce:40");
    /// assert!("nap".parse::<IdlePolicy>().is_err());
    /// assert!("spin,coalesce:40".parse::<IdlePolicy>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<IdlePolicy, String> {
        let Some((base, option)) = s.split_once(',') else {
            return parse_idle_base(s);
        };
        let policy = parse_idle_base(base)?;
        let delay = match option.strip_prefix("coalesce:").map(str::parse::<u64>) {
            Some(Ok(us)) if us <= MAX_COALESCE_US => Duration::from_micros(us),
            _ => {
                return Err(format!(
                    "{s}: after a wait, ,coalesce:N sleeps N µs (0 to {MAX_COALESCE_US}) when a busy port runs dry"
                ))
            }
        };
        match policy {
            IdlePolicy::Wait { .. } => Ok(policy.coalescing(delay)),
            _ => Err(format!("{s}: coalesce goes with a wait (wait,coalesce:N)")),
        }
    }
}

/// [`IdlePolicy`]'s text without `,coalesce:N`.
fn parse_idle_base(s: &str) -> Result<IdlePolicy, String> {
    match s {
        "wait" => Ok(IdlePolicy::wait()),
        "sleep" => Ok(IdlePolicy::default()),
        "spin" => Ok(IdlePolicy::Spin),
        other => match other.strip_prefix("wait:") {
            Some(spin) => {
                let (us, adaptive) = match spin.strip_prefix('~') {
                    Some(us) => (us, true),
                    None => (spin, false),
                };
                match us.parse::<u64>() {
                    Ok(us) if us <= MAX_SPIN_US => {
                        let spin = Duration::from_micros(us);
                        Ok(if adaptive {
                            IdlePolicy::wait_with_adaptive_spin(spin)
                        } else {
                            IdlePolicy::wait_with_spin(spin)
                        })
                    }
                    _ => Err(format!(
                        "{other}: wait:N spins N µs before it blocks (wait:~N: N µs at most, adaptive), 0 to {MAX_SPIN_US}"
                    )),
                }
            }
            None => Err(format!(
                "{other}: wait, wait:N or wait:~N (µs of spin), sleep or spin"
            )),
        },
    }
}

impl core::fmt::Display for IdlePolicy {
    /// As [`FromStr`](core::str::FromStr) reads it; a policy it cannot
    /// name is written out in full.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            IdlePolicy::Spin => f.write_str("spin"),
            p if p == IdlePolicy::default() => f.write_str("sleep"),
            IdlePolicy::Wait {
                spin,
                adaptive,
                max,
                coalesce,
            } if max == Duration::from_millis(1) => {
                if !adaptive && spin == IdlePolicy::DEFAULT_SPIN {
                    f.write_str("wait")?;
                } else {
                    let tilde = if adaptive { "~" } else { "" };
                    write!(f, "wait:{tilde}{}", spin.as_micros())?;
                }
                if !coalesce.is_zero() {
                    write!(f, ",coalesce:{}", coalesce.as_micros())?;
                }
                Ok(())
            }
            IdlePolicy::Backoff { after, sleep } => {
                write!(f, "sleep {} µs after {after} idle turns", sleep.as_micros())
            }
            IdlePolicy::Wait {
                spin,
                adaptive,
                max,
                coalesce,
            } => write!(
                f,
                "wait after {} µs of {}spin, {} µs at most, coalescing {} µs",
                spin.as_micros(),
                if adaptive { "adaptive " } else { "" },
                max.as_micros(),
                coalesce.as_micros()
            ),
        }
    }
}

impl Default for IdlePolicy {
    /// Backs off after 1024 idle iterations with 50 µs sleeps.
    fn default() -> Self {
        IdlePolicy::Backoff {
            after: 1024,
            sleep: Duration::from_micros(50),
        }
    }
}

/// Counters of one worker's loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Iterations run.
    pub iterations: u64,
    /// Iterations that did some work.
    pub busy_iterations: u64,
    /// Sum of the work the iterations reported (packets, timers).
    pub work: u64,
    /// Sleeps the idle policy asked for.
    pub sleeps: u64,
    /// Their total length as asked for, in nanoseconds (the thread may
    /// sleep a little longer: the kernel's timer slack).
    pub slept_ns: u64,
    /// Sleeps cut short because the loop's next deadline came first.
    pub sleeps_cut_by_deadline: u64,
    /// Waits on the port ([`IdlePolicy::Wait`]).
    pub waits: u64,
    /// Those a frame ended (the rest timed out).
    pub waits_woken: u64,
    /// Sleeps of [`IdlePolicy::Wait`]'s `coalesce` after a busy
    /// iteration (counted in `sleeps` too).
    pub coalesced: u64,
}

/// Runs `work` on the calling thread until `stop` is raised, then returns
/// the loop's counters. The loop is not finished: the caller still owns it.
///
/// Under [`IdlePolicy::Backoff`], once `after` iterations in a row did no
/// work, the loop sleeps between iterations ([`WorkLoop::sleep`]) for the
/// policy's `sleep`, or until the next deadline the last iteration
/// reported if that comes first, so timers fire on time. Under
/// [`IdlePolicy::Wait`], once it has found nothing to do for the policy's
/// `spin` (on [`WorkLoop::now_ns`]), it blocks instead
/// ([`WorkLoop::wait_rx`]) until a frame arrives, that deadline or the
/// policy's `max`; with its `coalesce`, the first idle iteration after
/// busy ones that received [`COALESCE_AFTER_FRAMES`] or more together
/// sleeps that long instead.
/// An iteration that did work (packets, events, timers fired) ends the
/// back-off.
pub fn run_loop<W: WorkLoop>(work: &mut W, stop: &StopFlag, mut idle: IdlePolicy) -> LoopStats {
    let mut stats = LoopStats::default();
    let mut idle_streak = 0u32;
    // The frames the busy iterations since the last idle one received:
    // enough of them, and the port's running dry is a stream's pause
    // (`coalesce`).
    let mut stretch_frames = 0usize;
    let mut spin = match idle {
        IdlePolicy::Wait { spin, .. } => SpinState::new(spin),
        _ => SpinState::new(Duration::ZERO),
    };
    while !stop.is_raised() {
        let progress = work.run_once();
        stats.iterations += 1;
        if progress.work > 0 {
            stats.busy_iterations += 1;
            stats.work += progress.work as u64;
            idle_streak = 0;
            spin.idle_since_ns = None;
            stretch_frames = stretch_frames.saturating_add(progress.received);
            continue;
        }
        // Asked only here, after an iteration that found nothing to do:
        // the busy path never pays for the knob.
        if let Some(policy) = work.idle_change() {
            idle = policy;
            idle_streak = 0;
            spin = match idle {
                IdlePolicy::Wait { spin, .. } => SpinState::new(spin),
                _ => SpinState::new(Duration::ZERO),
            };
        }
        if core::mem::take(&mut stretch_frames) >= COALESCE_AFTER_FRAMES {
            if let IdlePolicy::Wait { coalesce, .. } = idle {
                if !coalesce.is_zero() {
                    let nap = nap_until(coalesce, progress.next_deadline_ns, || work.now_ns());
                    if !nap.is_zero() {
                        stats.coalesced += 1;
                        stats.sleeps += 1;
                        stats.slept_ns += duration_ns(nap);
                        work.sleep(nap);
                    }
                    continue;
                }
            }
        }
        let (longest, wait) = match idle {
            IdlePolicy::Spin => continue,
            IdlePolicy::Backoff { after, sleep } => {
                idle_streak = idle_streak.saturating_add(1);
                if idle_streak < after {
                    continue;
                }
                (sleep, false)
            }
            IdlePolicy::Wait { max, adaptive, .. } => {
                if !spin.bound.is_zero() {
                    let now = work.now_ns();
                    let since = *spin.idle_since_ns.get_or_insert(now);
                    if now.saturating_sub(since) < spin.current_ns(adaptive) {
                        continue;
                    }
                }
                (max, true)
            }
        };
        let nap = nap_until(longest, progress.next_deadline_ns, || work.now_ns());
        if nap < longest {
            stats.sleeps_cut_by_deadline += 1;
        }
        if nap.is_zero() {
            continue;
        }
        if wait {
            match work.wait_rx(nap) {
                RxWait::Unsupported => {}
                woke => {
                    stats.waits += 1;
                    stats.waits_woken += u64::from(woke == RxWait::Ready);
                    if matches!(idle, IdlePolicy::Wait { adaptive: true, .. }) {
                        spin.after_wait(woke == RxWait::Ready, work.now_ns());
                    }
                    continue;
                }
            }
        }
        let nap = if wait {
            nap.min(WAIT_FALLBACK_SLEEP)
        } else {
            nap
        };
        stats.sleeps += 1;
        stats.slept_ns += u64::try_from(nap.as_nanos()).unwrap_or(u64::MAX);
        work.sleep(nap);
    }
    stats
}

/// The spin of [`IdlePolicy::Wait`]: when the loop last found nothing to
/// do, and, when adaptive, how much of the bound it spins now.
#[derive(Debug)]
struct SpinState {
    /// The policy's `spin`.
    bound: Duration,
    /// The adaptive spin, in nanoseconds, `bound` at most.
    adaptive_ns: u64,
    /// When the loop first found nothing to do since its last work, on
    /// its clock.
    idle_since_ns: Option<u64>,
    /// The idle stretch (its start) whose first wait moved the adaptive
    /// spin last: once per stretch.
    judged_since_ns: Option<u64>,
}

impl SpinState {
    fn new(bound: Duration) -> SpinState {
        SpinState {
            bound,
            adaptive_ns: duration_ns(bound),
            idle_since_ns: None,
            judged_since_ns: None,
        }
    }

    /// How long to spin after the last work.
    #[inline]
    fn current_ns(&self, adaptive: bool) -> u64 {
        if adaptive {
            self.adaptive_ns
        } else {
            duration_ns(self.bound)
        }
    }

    /// Moves the adaptive spin after a wait that ended at `now_ns`
    /// (`woken`: by a frame): longer when a frame came within the bound
    /// of the last work, shorter when the stretch outlasted it. Once per
    /// idle stretch: the later waits of a long one say nothing new.
    fn after_wait(&mut self, woken: bool, now_ns: u64) {
        let Some(since) = self.idle_since_ns else {
            return;
        };
        if self.judged_since_ns == Some(since) {
            return;
        }
        self.judged_since_ns = Some(since);
        let bound = duration_ns(self.bound);
        if woken && now_ns.saturating_sub(since) <= bound {
            let grown = self.adaptive_ns.saturating_mul(2).max(bound / 8);
            self.adaptive_ns = grown.min(bound);
        } else {
            self.adaptive_ns /= 2;
        }
    }
}

/// A duration in nanoseconds, saturating.
#[inline]
fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How long an idle loop sleeps: `sleep`, or less when `deadline_ns` comes
/// first (nothing when it is already due). Reads the time only when there
/// is a deadline.
#[inline]
fn nap_until(sleep: Duration, deadline_ns: Option<u64>, now_ns: impl FnOnce() -> u64) -> Duration {
    match deadline_ns {
        Some(deadline) => sleep.min(Duration::from_nanos(deadline.saturating_sub(now_ns()))),
        None => sleep,
    }
}

/// What a worker knows about itself while building its pipeline.
#[derive(Debug, Clone)]
pub struct WorkerCtx {
    /// The worker's number, `0..workers` (use it as the port queue number).
    pub index: usize,
    /// How many workers run.
    pub workers: usize,
    /// The core the thread is pinned to, if pinned.
    pub core: Option<usize>,
    /// The stop flag every worker polls.
    pub stop: StopFlag,
}

/// How many workers to run, where, and how they idle.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    cores: Vec<Option<usize>>,
    stop: StopFlag,
    idle: IdlePolicy,
}

impl WorkerConfig {
    /// One worker pinned to each listed core.
    pub fn on_cores(cores: Vec<usize>) -> Self {
        WorkerConfig {
            cores: cores.into_iter().map(Some).collect(),
            stop: StopFlag::new(),
            idle: IdlePolicy::default(),
        }
    }

    /// `n` workers left for the scheduler to place (not pinned).
    pub fn unpinned(n: usize) -> Self {
        WorkerConfig {
            cores: vec![None; n],
            stop: StopFlag::new(),
            idle: IdlePolicy::default(),
        }
    }

    /// Uses `stop` (for instance one armed with
    /// [`StopFlag::stop_on_signals`]) instead of a fresh flag.
    pub fn stop_flag(mut self, stop: StopFlag) -> Self {
        self.stop = stop;
        self
    }

    /// Sets what workers do when idle.
    pub fn idle(mut self, idle: IdlePolicy) -> Self {
        self.idle = idle;
        self
    }

    /// The flag that stops these workers.
    pub fn stop(&self) -> &StopFlag {
        &self.stop
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.cores.len()
    }
}

/// What one worker handed back.
#[derive(Debug)]
pub struct WorkerReport<R> {
    /// The worker's number.
    pub index: usize,
    /// The core it was pinned to.
    pub core: Option<usize>,
    /// Its loop counters.
    pub stats: LoopStats,
    /// Its loop's own report ([`WorkLoop::finish`]).
    pub report: R,
}

/// Why the workers did not all run to a clean stop.
#[derive(Debug)]
pub enum WorkerError<E> {
    /// A thread could not be started.
    Spawn {
        /// The worker's index.
        index: usize,
        /// The error from spawning the thread.
        source: io::Error,
    },
    /// A worker could not be pinned to its core.
    Pin {
        /// The worker's index.
        index: usize,
        /// The core it was to run on.
        core: usize,
        /// The error from setting the affinity.
        source: io::Error,
    },
    /// A worker's pipeline could not be built.
    Build {
        /// The worker's index.
        index: usize,
        /// The error the pipeline's builder returned.
        source: E,
    },
    /// A worker panicked.
    Panicked {
        /// The worker's index.
        index: usize,
    },
}

impl<E: fmt::Display> fmt::Display for WorkerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Spawn { index, source } => {
                write!(f, "worker {index}: cannot start thread: {source}")
            }
            WorkerError::Pin {
                index,
                core,
                source,
            } => write!(f, "worker {index}: cannot pin to core {core}: {source}"),
            WorkerError::Build { index, source } => {
                write!(f, "worker {index}: cannot build pipeline: {source}")
            }
            WorkerError::Panicked { index } => write!(f, "worker {index} panicked"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for WorkerError<E> {}

/// The cores this process may run on (its affinity mask), in order.
pub fn available_cores() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is the empty set; the kernel writes at most
    // `size_of::<cpu_set_t>()` bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}

/// Pins the calling thread to one core.
pub fn pin_current_thread(core: usize) -> io::Result<()> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the set is zero-initialised then gets one in-range bit; the
    // pointer and size passed describe it exactly. Thread id 0 is the caller.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the stop flag if the worker unwinds, so its peers stop too.
struct StopOnPanic(StopFlag);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.raise();
        }
    }
}

/// Starts one thread per configured worker; each pins itself, calls `build`
/// for its own pipeline and runs it until the stop flag is raised. Returns
/// the workers' reports in index order once all have stopped.
///
/// If a worker fails to pin, to build or panics, the flag is raised so the
/// others stop too, and the first failure (by index) is returned.
pub fn run_workers<W, E, F>(
    config: &WorkerConfig,
    build: F,
) -> Result<Vec<WorkerReport<W::Report>>, WorkerError<E>>
where
    W: WorkLoop,
    E: Send,
    F: Fn(&WorkerCtx) -> Result<W, E> + Sync,
{
    let workers = config.cores.len();
    let build = &build;
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        let mut spawn_error = None;
        for (index, &core) in config.cores.iter().enumerate() {
            let ctx = WorkerCtx {
                index,
                workers,
                core,
                stop: config.stop.clone(),
            };
            let idle = config.idle;
            let spawned = thread::Builder::new()
                .name(format!("tpa-worker-{index}"))
                .spawn_scoped(scope, move || run_one_worker(ctx, idle, build));
            match spawned {
                Ok(h) => handles.push(h),
                Err(source) => {
                    config.stop.raise();
                    spawn_error = Some(WorkerError::Spawn { index, source });
                    break;
                }
            }
        }
        let mut reports = Vec::with_capacity(workers);
        let mut first_error = spawn_error;
        for (index, handle) in handles.into_iter().enumerate() {
            let outcome = handle
                .join()
                .unwrap_or(Err(WorkerError::Panicked { index }));
            match outcome {
                Ok(report) => reports.push(report),
                Err(e) => {
                    config.stop.raise();
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    })
}

fn run_one_worker<W, E, F>(
    ctx: WorkerCtx,
    idle: IdlePolicy,
    build: &F,
) -> Result<WorkerReport<W::Report>, WorkerError<E>>
where
    W: WorkLoop,
    F: Fn(&WorkerCtx) -> Result<W, E>,
{
    let _guard = StopOnPanic(ctx.stop.clone());
    let fail = |e| {
        ctx.stop.raise();
        e
    };
    if let Some(core) = ctx.core {
        pin_current_thread(core).map_err(|source| {
            fail(WorkerError::Pin {
                index: ctx.index,
                core,
                source,
            })
        })?;
    }
    let mut work = build(&ctx).map_err(|source| {
        fail(WorkerError::Build {
            index: ctx.index,
            source,
        })
    })?;
    let stats = run_loop(&mut work, &ctx.stop, idle);
    Ok(WorkerReport {
        index: ctx.index,
        core: ctx.core,
        stats,
        report: work.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::VirtualClock;
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicUsize;

    /// A loop that does one unit of work per iteration and stops everyone
    /// after `limit` iterations of its own (`None`: never).
    struct Counting {
        done: u64,
        limit: Option<u64>,
        stop: StopFlag,
        core_seen: Option<usize>,
    }

    impl WorkLoop for Counting {
        type Report = (u64, Option<usize>);
        fn run_once(&mut self) -> Progress {
            self.done += 1;
            if Some(self.done) == self.limit {
                self.stop.raise();
            }
            Progress::from(1)
        }
        fn finish(self) -> Self::Report {
            (self.done, self.core_seen)
        }
    }

    fn current_core() -> usize {
        // SAFETY: sched_getcpu takes no arguments and only reads state.
        unsafe { libc::sched_getcpu() as usize }
    }

    #[test]
    fn workers_pin_build_run_and_report_in_order() {
        let cores = available_cores().unwrap();
        assert!(!cores.is_empty());
        let chosen: Vec<usize> = cores.iter().copied().cycle().take(2).collect();
        let config = WorkerConfig::on_cores(chosen.clone()).idle(IdlePolicy::Spin);
        let built = AtomicUsize::new(0);
        let reports = run_workers(&config, |ctx| {
            built.fetch_add(1, Ordering::Relaxed);
            Ok::<_, String>(Counting {
                done: 0,
                // Only the first worker stops the others, so it always
                // gets its 1000 iterations whatever the scheduling.
                limit: (ctx.index == 0).then_some(1000),
                stop: ctx.stop.clone(),
                core_seen: Some(current_core()),
            })
        })
        .unwrap();
        assert_eq!(built.load(Ordering::Relaxed), 2);
        assert_eq!(reports.len(), 2);
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r.index, i);
            assert_eq!(r.core, Some(chosen[i]));
            // Pinned before building: the build ran on the chosen core.
            assert_eq!(r.report.1, Some(chosen[i]));
            assert_eq!(r.stats.iterations, r.report.0);
            assert_eq!(r.stats.work, r.stats.busy_iterations);
        }
        // The first worker raised the flag after exactly 1000 iterations.
        assert_eq!(reports[0].report.0, 1000);
    }

    /// An idle loop that asks for `change` after `switch_at` iterations
    /// and stops at `limit`, counting its sleeps (without sleeping).
    struct Switching {
        turns: u64,
        switch_at: u64,
        limit: u64,
        change: Option<IdlePolicy>,
        sleeps_before_switch: u64,
        sleeps: u64,
        stop: StopFlag,
    }

    impl WorkLoop for Switching {
        type Report = (u64, u64);
        fn run_once(&mut self) -> Progress {
            self.turns += 1;
            if self.turns == self.limit {
                self.stop.raise();
            }
            Progress::from(0)
        }
        fn sleep(&mut self, _: Duration) {
            self.sleeps += 1;
        }
        fn idle_change(&mut self) -> Option<IdlePolicy> {
            if self.turns < self.switch_at {
                return None;
            }
            let change = self.change.take();
            if change.is_some() {
                self.sleeps_before_switch = self.sleeps;
            }
            change
        }
        fn finish(self) -> Self::Report {
            (self.sleeps_before_switch, self.sleeps)
        }
    }

    #[test]
    fn an_idle_policy_change_takes_effect_at_the_next_idle_turn() {
        let stop = StopFlag::new();
        let mut work = Switching {
            turns: 0,
            switch_at: 100,
            limit: 200,
            change: Some(IdlePolicy::Backoff {
                after: 10,
                sleep: Duration::from_micros(1),
            }),
            sleeps_before_switch: 0,
            sleeps: 0,
            stop: stop.clone(),
        };
        let stats = run_loop(&mut work, &stop, IdlePolicy::Spin);
        let (before, after) = work.finish();
        assert_eq!(before, 0, "spinning: no sleep");
        // From turn 100 on, it backs off from its tenth idle turn in a
        // row: turns 109 to 200.
        assert_eq!(after, 92);
        assert_eq!(stats.sleeps, 92);
        assert_eq!(
            "sleep".parse::<IdlePolicy>().unwrap(),
            IdlePolicy::default()
        );
        assert_eq!(IdlePolicy::default().to_string(), "sleep");
        assert_eq!(IdlePolicy::wait().to_string(), "wait");
        assert_eq!(
            "wait:20".parse::<IdlePolicy>().unwrap().to_string(),
            "wait:20"
        );
        assert!("wait:x".parse::<IdlePolicy>().is_err());
    }

    #[test]
    fn a_failing_build_stops_the_others_and_is_reported() {
        let config = WorkerConfig::unpinned(3);
        let result = run_workers(&config, |ctx| {
            if ctx.index == 1 {
                return Err("no such device");
            }
            Ok(|| 0usize)
        });
        match result {
            Err(WorkerError::Build { index: 1, source }) => assert_eq!(source, "no such device"),
            other => panic!("expected a build error of worker 1, got {other:?}"),
        }
        assert!(config.stop().is_raised());
    }

    #[test]
    fn a_panicking_worker_stops_the_others() {
        let config = WorkerConfig::unpinned(2).idle(IdlePolicy::Spin);
        let result = run_workers(&config, |ctx| {
            let index = ctx.index;
            let mut n = 0;
            Ok::<_, ()>(move || {
                n += 1;
                if index == 0 && n == 100 {
                    panic!("worker 0 fails on purpose");
                }
                0usize
            })
        });
        assert!(matches!(result, Err(WorkerError::Panicked { index: 0 })));
    }

    #[test]
    fn pinning_to_a_core_outside_the_set_fails_cleanly() {
        let config = WorkerConfig::on_cores(vec![libc::CPU_SETSIZE as usize - 1]);
        let result = run_workers(&config, |_| Ok::<_, ()>(|| 0usize));
        assert!(matches!(result, Err(WorkerError::Pin { index: 0, .. })));
    }

    /// Timers at fixed times on a virtual clock: each iteration fires the
    /// due ones; sleeping moves the clock by exactly what was asked.
    struct Timers {
        clock: VirtualClock,
        pending: VecDeque<u64>,
        /// (deadline, the time of the iteration that fired it).
        fired: Vec<(u64, u64)>,
        /// (sleep asked for, gap to the next deadline when asked).
        naps: Vec<(Duration, Option<u64>)>,
        stop: StopFlag,
    }

    impl WorkLoop for Timers {
        type Report = (Vec<(u64, u64)>, Vec<(Duration, Option<u64>)>);
        fn run_once(&mut self) -> Progress {
            let now = self.clock.now_ns();
            let mut fired = 0;
            while let Some(deadline) = self.pending.front().copied().filter(|&d| d <= now) {
                self.pending.pop_front();
                self.fired.push((deadline, now));
                fired += 1;
            }
            if self.pending.is_empty() {
                self.stop.raise();
            }
            Progress {
                work: fired,
                received: 0,
                next_deadline_ns: self.pending.front().copied(),
            }
        }
        fn now_ns(&self) -> u64 {
            self.clock.now_ns()
        }
        fn sleep(&mut self, duration: Duration) {
            let now = self.clock.now_ns();
            let gap = self.pending.front().map(|&d| d.saturating_sub(now));
            self.naps.push((duration, gap));
            self.clock.advance(duration);
        }
        fn finish(self) -> Self::Report {
            (self.fired, self.naps)
        }
    }

    #[test]
    fn a_backing_off_loop_wakes_for_its_next_deadline_not_later() {
        let deadlines = [120_000, 130_000, 130_000, 131_000, 400_000];
        let stop = StopFlag::new();
        let mut timers = Timers {
            clock: VirtualClock::new(),
            pending: deadlines.into_iter().collect(),
            fired: Vec::new(),
            naps: Vec::new(),
            stop: stop.clone(),
        };
        let sleep = Duration::from_micros(50);
        let stats = run_loop(&mut timers, &stop, IdlePolicy::Backoff { after: 2, sleep });
        let (fired, naps) = timers.finish();

        // Every timer fired in the iteration at its deadline, not after:
        // no sleep overshot one.
        let expected: Vec<(u64, u64)> = deadlines.iter().map(|&d| (d, d)).collect();
        assert_eq!(fired, expected);
        // Every sleep asked for lasted at most the policy's and at most the
        // gap to the next deadline.
        for &(nap, gap) in &naps {
            assert!(nap <= sleep, "{nap:?} > {sleep:?}");
            let gap = gap.expect("a deadline is pending while the loop sleeps");
            assert!(
                nap.as_nanos() <= u128::from(gap),
                "{nap:?} past the gap of {gap} ns"
            );
        }
        // 0 → 120 µs: 50, 50, then cut to 20; 120 → 130: cut to 10;
        // 130 → 131: cut to 1; 131 → 400: 50 × 5, then cut to 19.
        let asked: Vec<u64> = naps.iter().map(|(n, _)| n.as_micros() as u64).collect();
        assert_eq!(asked, [50, 50, 20, 10, 1, 50, 50, 50, 50, 50, 19]);
        assert_eq!(stats.sleeps, 11);
        assert_eq!(stats.sleeps_cut_by_deadline, 4);
        assert_eq!(stats.slept_ns, 400_000);
        // Firing timers is work: each firing iteration was busy.
        assert_eq!(stats.busy_iterations, 4);
        assert_eq!(stats.work, deadlines.len() as u64);
    }

    #[test]
    fn a_due_deadline_means_no_sleep() {
        let sleep = Duration::from_micros(50);
        let now = || 200;
        assert_eq!(nap_until(sleep, Some(100), now), Duration::ZERO);
        assert_eq!(nap_until(sleep, Some(200), now), Duration::ZERO);
        assert_eq!(
            nap_until(sleep, Some(10_200), now),
            Duration::from_micros(10)
        );
        assert_eq!(nap_until(sleep, Some(u64::MAX), now), sleep);
        assert_eq!(
            nap_until(sleep, None, || panic!("no deadline: no clock read")),
            sleep
        );
    }

    #[test]
    fn closures_returning_iteration_stats_are_work_loops() {
        let stop = StopFlag::new();
        let flag = stop.clone();
        let mut n = 0u64;
        let mut work = move || {
            n += 1;
            if n == 3 {
                flag.raise();
            }
            IterationStats {
                rx: 1,
                tx: 1,
                work: 1,
                next_deadline_ns: None,
            }
        };
        let stats = run_loop(&mut work, &stop, IdlePolicy::Spin);
        assert_eq!(
            (stats.iterations, stats.busy_iterations, stats.work),
            (3, 3, 9)
        );
    }

    #[test]
    fn sigterm_raises_the_flag() {
        let stop = StopFlag::new();
        stop.stop_on_signals().unwrap();
        // SAFETY: sends SIGTERM to this process, whose handler was just
        // installed above and only raises the flag.
        unsafe { libc::raise(libc::SIGTERM) };
        assert!(stop.is_raised());
    }

    /// A loop on a virtual clock over a port whose frames arrive at
    /// given times, with a timer deadline; blocks on the port if `can_wait`.
    struct Arrivals {
        clock: VirtualClock,
        frames: VecDeque<u64>,
        deadline: Option<u64>,
        can_wait: bool,
        /// What one iteration costs on the clock (0: it takes no time).
        turn_ns: u64,
        /// When each wait began.
        wait_starts: Vec<u64>,
        /// (time read, at the frame's arrival)
        received: Vec<(u64, u64)>,
        /// (timeout asked, time to the next event)
        waits: Vec<(Duration, u64)>,
        sleeps: Vec<Duration>,
        stop: StopFlag,
    }

    impl Arrivals {
        fn next_event(&self) -> u64 {
            let frame = self.frames.front().copied().unwrap_or(u64::MAX);
            frame.min(self.deadline.unwrap_or(u64::MAX))
        }
    }

    impl WorkLoop for Arrivals {
        type Report = ();
        fn run_once(&mut self) -> Progress {
            let now = self.clock.now_ns();
            let mut work = 0;
            let before = self.received.len();
            while self.frames.front().is_some_and(|&t| t <= now) {
                let t = self.frames.pop_front().unwrap_or_default();
                self.received.push((now, t));
                work += 1;
            }
            if self.deadline.is_some_and(|d| d <= now) {
                self.deadline = None;
                work += 1;
            }
            if self.frames.is_empty() && self.deadline.is_none() {
                self.stop.raise();
            }
            self.clock.advance(Duration::from_nanos(self.turn_ns));
            Progress {
                work,
                received: self.received.len() - before,
                next_deadline_ns: self.deadline,
            }
        }
        fn now_ns(&self) -> u64 {
            self.clock.now_ns()
        }
        fn sleep(&mut self, duration: Duration) {
            self.sleeps.push(duration);
            self.clock.advance(duration);
        }
        fn wait_rx(&mut self, timeout: Duration) -> RxWait {
            if !self.can_wait {
                return RxWait::Unsupported;
            }
            let now = self.clock.now_ns();
            let frame = self.frames.front().copied().unwrap_or(u64::MAX);
            self.wait_starts.push(now);
            self.waits
                .push((timeout, self.next_event().saturating_sub(now)));
            let until = now.saturating_add(timeout.as_nanos() as u64);
            if frame <= until {
                self.clock
                    .advance(Duration::from_nanos(frame.saturating_sub(now)));
                RxWait::Ready
            } else {
                self.clock.advance(timeout);
                RxWait::TimedOut
            }
        }
        fn finish(self) {}
    }

    fn arrivals(can_wait: bool, stop: &StopFlag) -> Arrivals {
        Arrivals {
            clock: VirtualClock::new(),
            frames: [5_000, 5_000, 40_000, 3_000_000].into_iter().collect(),
            deadline: Some(1_200_000),
            can_wait,
            turn_ns: 0,
            wait_starts: Vec::new(),
            received: Vec::new(),
            waits: Vec::new(),
            sleeps: Vec::new(),
            stop: stop.clone(),
        }
    }

    #[test]
    fn a_waiting_loop_takes_each_frame_when_it_arrives_and_wakes_for_its_timers() {
        let stop = StopFlag::new();
        let mut port = arrivals(true, &stop);
        let max = Duration::from_millis(1);
        let stats = run_loop(
            &mut port,
            &stop,
            IdlePolicy::Wait {
                spin: Duration::ZERO,
                adaptive: false,
                max,
                coalesce: Duration::ZERO,
            },
        );
        // Every frame was received the moment it arrived: no sleep
        // overshot one.
        assert!(
            port.received.iter().all(|&(seen, at)| seen == at),
            "{:?}",
            port.received
        );
        assert_eq!(port.received.len(), 4);
        // No wait went past the policy's max or the timer's deadline.
        for &(timeout, _) in &port.waits {
            assert!(timeout <= max, "{timeout:?}");
        }
        assert!(port.sleeps.is_empty(), "{:?}", port.sleeps);
        // 0 → 5 µs, 5 → 40 µs, 40 µs → the timer at 1.2 ms (cut: 1 ms,
        // then 160 µs), 1.2 → 3 ms (1 ms, then woken 0.8 ms in).
        let asked: Vec<u64> = port
            .waits
            .iter()
            .map(|(t, _)| t.as_micros() as u64)
            .collect();
        assert_eq!(asked, [1000, 1000, 1000, 160, 1000, 1000]);
        // Three frames ended a wait (the first two arrived together).
        assert_eq!((stats.waits, stats.waits_woken), (6, 3));
        assert_eq!(stats.sleeps_cut_by_deadline, 1);
    }

    #[test]
    fn a_loop_that_cannot_wait_sleeps_in_short_naps_instead() {
        let stop = StopFlag::new();
        let mut port = arrivals(false, &stop);
        let max = Duration::from_millis(1);
        let stats = run_loop(
            &mut port,
            &stop,
            IdlePolicy::Wait {
                spin: Duration::ZERO,
                adaptive: false,
                max,
                coalesce: Duration::ZERO,
            },
        );
        assert!(port.waits.is_empty());
        assert_eq!(port.received.len(), 4);
        assert!(port.sleeps.iter().all(|&n| n <= WAIT_FALLBACK_SLEEP));
        assert_eq!(stats.waits, 0);
        assert_eq!(stats.sleeps, port.sleeps.len() as u64);
        // Frames wait for the end of a nap, never more than one.
        for &(seen, at) in &port.received {
            assert!(seen - at <= WAIT_FALLBACK_SLEEP.as_nanos() as u64);
        }
    }
    #[test]
    fn a_waiting_loop_spins_for_its_spin_after_the_last_work_before_it_blocks() {
        let stop = StopFlag::new();
        let mut port = arrivals(true, &stop);
        // Each iteration takes 1 µs of the virtual clock.
        port.turn_ns = 1_000;
        let spin = Duration::from_micros(20);
        let max = Duration::from_millis(1);
        let stats = run_loop(
            &mut port,
            &stop,
            IdlePolicy::Wait {
                spin,
                adaptive: false,
                max,
                coalesce: Duration::ZERO,
            },
        );
        // The frames at 5 µs came while the loop still spun after its
        // start: taken by polling, on the turn they arrived. The frame at
        // 40 µs came after 20 µs of spinning (from 7 µs, the end of the
        // first idle turn after the last work) and a wait from 27 µs: it
        // ended that wait.
        assert_eq!(
            port.received,
            [
                (5_000, 5_000),
                (5_000, 5_000),
                (40_000, 40_000),
                (3_000_000, 3_000_000)
            ]
        );
        // Every wait began `spin` after the first idle turn since the
        // last work: 7 → 27 µs; 42 → 62 µs, then one turn after the last
        // wait (1.063 ms, cut by the timer at 1.2 ms); 1.202 → 1.222 ms,
        // then on.
        assert_eq!(
            port.wait_starts,
            [27_000, 62_000, 1_063_000, 1_222_000, 2_223_000]
        );
        let asked: Vec<u64> = port
            .waits
            .iter()
            .map(|(t, _)| t.as_micros() as u64)
            .collect();
        assert_eq!(asked, [1000, 1000, 137, 1000, 1000]);
        assert_eq!((stats.waits, stats.waits_woken), (5, 2));
        assert!(port.sleeps.is_empty(), "{:?}", port.sleeps);
    }

    #[test]
    fn a_frame_within_the_spin_of_the_last_work_is_taken_without_a_wait() {
        let stop = StopFlag::new();
        let mut port = arrivals(true, &stop);
        port.turn_ns = 1_000;
        // Request-response: each answer comes 15 µs after the last.
        port.frames = (1..=20).map(|i| i * 15_000).collect();
        port.deadline = None;
        let spin = Duration::from_micros(20);
        let stats = run_loop(&mut port, &stop, IdlePolicy::wait_with_spin(spin));
        assert_eq!(port.received.len(), 20);
        assert!(port.received.iter().all(|&(seen, at)| seen == at));
        assert_eq!(stats.waits, 0, "{:?}", port.wait_starts);
        // With no spin the same exchanges block before every answer.
        let stop = StopFlag::new();
        let mut port = arrivals(true, &stop);
        port.turn_ns = 1_000;
        port.frames = (1..=20).map(|i| i * 15_000).collect();
        port.deadline = None;
        let stats = run_loop(&mut port, &stop, IdlePolicy::wait_with_spin(Duration::ZERO));
        assert_eq!(port.received.len(), 20);
        assert_eq!((stats.waits, stats.waits_woken), (20, 20));
    }
    #[test]
    fn an_adaptive_spin_halves_when_answers_come_late_and_doubles_when_they_come_soon() {
        let stop = StopFlag::new();
        let mut port = arrivals(true, &stop);
        port.turn_ns = 1_000;
        port.deadline = None;
        // Four answers 200 µs apart (past the 40 µs bound), then six 30 µs
        // apart (within it).
        let late = (1..=4).map(|i| i * 200_000);
        let soon = (1..=6).map(|i| 800_000 + i * 30_000);
        port.frames = late.chain(soon).collect();
        let spin = Duration::from_micros(40);
        let stats = run_loop(&mut port, &stop, IdlePolicy::wait_with_adaptive_spin(spin));
        assert_eq!(port.received.len(), 10);
        assert!(port.received.iter().all(|&(seen, at)| seen == at));
        // How long the loop spun before each wait: the idle stretch
        // starts at the end of the first idle turn, 2 µs after a frame
        // (1 µs after the start for the first).
        let mut starts = vec![1_000];
        starts.extend(port.received.iter().map(|&(seen, _)| seen + 2_000));
        let spun: Vec<u64> = port
            .wait_starts
            .iter()
            .map(|&w| {
                let start = starts.iter().rev().find(|&&s| s <= w).copied();
                (w - start.unwrap_or(0)) / 1_000
            })
            .collect();
        // From the full bound, halved by each stretch that outlasted it
        // (the first spans 200 µs: its wait is judged once), then, once
        // answers come within the bound, doubled from an eighth of it
        // until they are taken while spinning (no wait).
        assert_eq!(spun, [40, 20, 10, 5, 3, 5, 10, 20]);
        assert_eq!(stats.waits, 8);
    }

    /// A stream: 12 frames at 5 µs, then one every 2 µs from 20 to 200
    /// µs; then a lone frame at 1 ms; no timer.
    fn stream(stop: &StopFlag) -> Arrivals {
        let mut port = arrivals(true, stop);
        port.turn_ns = 1_000;
        port.deadline = None;
        port.frames = core::iter::repeat_n(5_000, 12)
            .chain((10..=100).map(|i| i * 2_000))
            .chain([1_000_000])
            .collect();
        port
    }

    #[test]
    fn a_stream_s_frames_gather_while_the_loop_coalesces_and_a_lone_frame_ends_a_wait() {
        let coalesce = Duration::from_micros(30);
        let policy = IdlePolicy::wait().coalescing(coalesce);
        let stop = StopFlag::new();
        let mut port = stream(&stop);
        let stats = run_loop(&mut port, &stop, policy);
        assert_eq!(port.received.len(), 104);
        // Each pause of the stream after a busy turn was a sleep of
        // `coalesce`, not a wait: 15 frames gather in each.
        assert!(stats.coalesced >= 5, "{stats:?}");
        assert_eq!(stats.coalesced, port.sleeps.len() as u64);
        assert!(
            port.sleeps.iter().all(|&n| n == coalesce),
            "{:?}",
            port.sleeps
        );
        // No frame waited longer than the sleep and the turn after it.
        for &(seen, at) in &port.received {
            assert!(seen - at <= 31_000, "{seen} {at}");
        }
        // The lone frame found the loop blocked on the port: it ended a
        // wait and was taken when it came.
        assert_eq!(port.received.last(), Some(&(1_000_000, 1_000_000)));
        assert!(stats.waits_woken >= 1, "{stats:?}");

        // Without coalescing the stream's frames each end a wait.
        let stop = StopFlag::new();
        let mut port = stream(&stop);
        let plain = run_loop(&mut port, &stop, IdlePolicy::wait());
        assert_eq!(port.received.len(), 104);
        assert!(port.sleeps.is_empty());
        assert_eq!(plain.coalesced, 0);
        assert!(
            plain.waits_woken > 5 * stats.waits_woken,
            "{plain:?} {stats:?}"
        );
    }

    #[test]
    fn request_response_never_coalesces() {
        let stop = StopFlag::new();
        let mut port = arrivals(true, &stop);
        port.turn_ns = 1_000;
        port.frames = (1..=20).map(|i| i * 15_000).collect();
        port.deadline = None;
        let policy = IdlePolicy::wait().coalescing(Duration::from_micros(30));
        let stats = run_loop(&mut port, &stop, policy);
        assert_eq!(port.received.len(), 20);
        assert!(port.received.iter().all(|&(seen, at)| seen == at));
        assert_eq!((stats.coalesced, stats.sleeps), (0, 0));
        assert_eq!(stats.waits_woken, 20);
    }

    #[test]
    fn a_coalescing_sleep_ends_at_the_next_deadline() {
        let stop = StopFlag::new();
        let mut port = stream(&stop);
        // A timer at 16 µs: the first busy turn ends at 6 µs, the idle
        // turn after it at 7 µs, and the sleep then lasts 9 µs, not 30.
        port.deadline = Some(16_000);
        let policy = IdlePolicy::wait().coalescing(Duration::from_micros(30));
        let stats = run_loop(&mut port, &stop, policy);
        assert_eq!(port.sleeps.first(), Some(&Duration::from_micros(9)));
        assert_eq!(port.received.len(), 104);
        assert!(stats.coalesced >= 1);
    }
}
