//! Helpers for the stages' unit tests: buffers holding crafted frames and a
//! context to call a stage in.

use std::cell::RefCell;
use std::sync::OnceLock;

use tpa::buf::{Pool, PoolBuf};
use tpa::pipeline::{NoHost, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::stage::Cx;

/// The time the test contexts report, in nanoseconds.
pub const NOW_NS: u64 = 1_000_000;

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::with_capacity(256).expect("test pool"))
}

/// A buffer holding `bytes`.
pub fn frame(bytes: &[u8]) -> PoolBuf {
    let mut buf = pool().alloc().expect("test pool has room");
    buf.extend_from_slice(bytes).expect("frame fits a buffer");
    buf
}

/// Runs `f` with a context over an in-memory port, at time [`NOW_NS`].
pub fn with_cx<R>(f: impl FnOnce(&mut Cx<'_, PoolBuf>) -> R) -> R {
    thread_local! {
        static PORTS: RefCell<Option<(MemoryPort, MemoryPort)>> = const { RefCell::new(None) };
    }
    PORTS.with(|ports| {
        let mut ports = ports.borrow_mut();
        let (port, _peer) = ports
            .get_or_insert_with(|| MemoryWire::pair(WireConfig::default()).expect("memory wire"));
        let mut runtime: Runtime<PoolBuf, 32, 0> = Runtime::new([], []);
        runtime.with_cx(port, &mut NoHost, NOW_NS, f)
    })
}
