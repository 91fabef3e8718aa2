//! Helpers for the stages' unit tests: buffers holding crafted frames, a
//! context to call a stage in, and the pool behind both, so a test ends
//! with one line: `testing::pool().assert_whole()`.

use std::cell::RefCell;

pub use tpa::buf::BufferPool;
use tpa::buf::{Pool, PoolBuf, PoolConfig};
use tpa::pipeline::{NoHost, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::stage::Cx;

/// The time the test contexts report, in nanoseconds.
pub const NOW_NS: u64 = 1_000_000;

thread_local! {
    /// One pool per test thread (libtest runs each test on a thread of its
    /// own), so one test's check never sees another test's buffers.
    static POOL: Pool = Pool::new(PoolConfig {
        name: "stage-test".to_owned(),
        capacity: 256,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .expect("test pool");
}

/// The pool this thread's [`frame`]s and [`with_cx`] contexts allocate
/// from. End a test with `pool().assert_whole()` once every buffer it got
/// is dropped.
pub fn pool() -> Pool {
    POOL.with(Pool::clone)
}

/// A buffer from [`pool`] holding `bytes`.
pub fn frame(bytes: &[u8]) -> PoolBuf {
    let mut buf = pool().alloc().expect("test pool has room");
    buf.extend_from_slice(bytes).expect("frame fits a buffer");
    buf
}

/// Every byte of `buf`'s chain, joined.
pub fn joined(buf: &PoolBuf) -> Vec<u8> {
    use tpa::buf::PacketBuf;
    buf.segments().flatten().copied().collect()
}

/// `bytes` as a chain cut at `cuts` (increasing offsets), as a gathering
/// port delivers a frame: the first segment held alone, the later ones
/// shared with the handle returned (the sender's retransmission copy).
pub fn chained(bytes: &[u8], cuts: &[usize]) -> (PoolBuf, tpa::buf::Shared<PoolBuf>) {
    use tpa::buf::PacketBuf;
    let mut ends: Vec<usize> = cuts.to_vec();
    ends.push(bytes.len());
    let mut head = frame(&bytes[..ends[0]]);
    let mut tail = frame(&bytes[ends[0]..ends[1]]);
    for w in ends[1..].windows(2) {
        tail.chain(frame(&bytes[w[0]..w[1]])).expect("chain");
    }
    let held = tail.share();
    head.chain_shared(held.clone()).expect("chain");
    (head, held)
}

/// Runs `f` with a context over an in-memory port whose buffers come from
/// [`pool`], at time [`NOW_NS`]. Whatever the stage transmits or hands to
/// the host is dropped when `f` returns.
pub fn with_cx<R>(f: impl FnOnce(&mut Cx<'_, PoolBuf>) -> R) -> R {
    with_cx_at(NOW_NS, f).0
}

/// Runs `f` with a context as [`with_cx`] does, at time `now_ns`, and
/// returns what the stage transmitted, in order.
pub fn with_cx_at<R>(now_ns: u64, f: impl FnOnce(&mut Cx<'_, PoolBuf>) -> R) -> (R, Vec<PoolBuf>) {
    with_state_at(now_ns, &mut (), f)
}

/// Runs `f` with a context over `state`, as [`with_cx_at`] does.
pub fn with_state_at<S, R>(
    now_ns: u64,
    state: &mut S,
    f: impl FnOnce(&mut Cx<'_, PoolBuf, S>) -> R,
) -> (R, Vec<PoolBuf>) {
    with_state_on(now_ns, false, state, f)
}

/// The in-memory port of [`with_state_on`] claiming TCP segmentation
/// offload (TSO) in its caps; what it is handed is drained by the test.
struct TsoPort<'a> {
    inner: &'a mut MemoryPort,
    caps: tpa::port::PortCaps,
}

impl tpa::port::Port for TsoPort<'_> {
    type Buf = PoolBuf;
    fn rx_burst<const N: usize>(&mut self, rx: &mut tpa::port::Burst<PoolBuf, N>) -> usize {
        self.inner.rx_burst(rx)
    }
    fn tx_burst<const N: usize>(&mut self, tx: &mut tpa::port::Burst<PoolBuf, N>) -> usize {
        self.inner.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<PoolBuf> {
        self.inner.pool()
    }
    fn caps(&self) -> &tpa::port::PortCaps {
        &self.caps
    }
}

/// [`with_state_at`] over a port that claims TSO when `tso` (no other
/// offload), else the plain in-memory port.
pub fn with_state_on<S, R>(
    now_ns: u64,
    tso: bool,
    state: &mut S,
    f: impl FnOnce(&mut Cx<'_, PoolBuf, S>) -> R,
) -> (R, Vec<PoolBuf>) {
    thread_local! {
        static PORTS: RefCell<Option<(MemoryPort, MemoryPort)>> = const { RefCell::new(None) };
    }
    PORTS.with(|ports| {
        let mut ports = ports.borrow_mut();
        let (port, _peer) = ports.get_or_insert_with(|| {
            MemoryWire::pair(WireConfig {
                pool: Some(pool()),
                ..WireConfig::default()
            })
            .expect("memory wire")
        });
        let mut runtime: Runtime<PoolBuf, 32, 0> = Runtime::new([], []);
        let r = if tso {
            let mut caps = tpa::port::Port::caps(&*port).clone();
            caps.tx_offloads.tso = true;
            let mut port = TsoPort { inner: port, caps };
            runtime.with_state(&mut port, &mut NoHost, now_ns, state, f)
        } else {
            runtime.with_state(port, &mut NoHost, now_ns, state, f)
        };
        let sent = runtime.drain_tx().collect();
        (r, sent)
    })
}

/// The state of a stage that needs the egress path: its part and the
/// application's events.
#[derive(tpa::state::State)]
pub struct EgressState {
    /// The output path.
    #[polled]
    pub egress: crate::egress::Egress<PoolBuf>,
    /// Events raised for sockets.
    pub events: tpa::app::Events,
}

impl EgressState {
    /// The state of `iface` with neighbor caches seeded for repeatable
    /// tests.
    pub fn new(iface: crate::iface::Interface) -> Self {
        let mut config = crate::egress::EgressConfig::default();
        config.neighbors.seed = 1;
        EgressState {
            egress: crate::egress::Egress::new(iface).with_config(config),
            events: tpa::app::Events::default(),
        }
    }
}
