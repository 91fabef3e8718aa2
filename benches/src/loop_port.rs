//! A port without a wire, for measuring what runs between receive and
//! transmit: the buffers it transmits are the ones it receives next.

use tpa::buf::{PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::{Burst, Offloads, Port, PortCaps};
use tpa::wire::MacAddr;

/// The most buffers a [`LoopPort`] circulates.
pub const LOOP_CAPACITY: usize = 64;

/// A port that receives the buffers it transmitted: a fixed set of buffers
/// circulates, so every receive sees whatever was sent back, with no copy
/// and no allocation.
///
/// ```
/// use tpa::buf::{PacketBuf, PoolBuf};
/// use tpa::port::{Burst, Port};
/// use tpa::wire::MacAddr;
/// use tpa_benches::loop_port::LoopPort;
///
/// let mut port = LoopPort::new(4, MacAddr([2, 0, 0, 0, 0, 1]), |i| vec![i as u8; 60]);
/// let mut rx: Burst<PoolBuf> = Burst::new();
/// assert_eq!(port.rx_burst(&mut rx), 4);
/// assert_eq!(rx.as_slice()[3].data()[0], 3);
/// assert_eq!(port.tx_burst(&mut rx), 4);
/// ```
pub struct LoopPort {
    ring: Burst<PoolBuf, LOOP_CAPACITY>,
    caps: PortCaps,
    pool: Pool,
}

impl LoopPort {
    /// `count` buffers (at most [`LOOP_CAPACITY`]), buffer `i` holding
    /// `frame(i)`, received back as they were transmitted.
    pub fn new(count: usize, mac: MacAddr, frame: impl Fn(usize) -> Vec<u8>) -> Self {
        assert!(count <= LOOP_CAPACITY, "at most {LOOP_CAPACITY} buffers");
        let pool = Pool::new(PoolConfig {
            capacity: 256,
            huge_pages: false,
            ..PoolConfig::default()
        })
        .expect("pool");
        let mut ring = Burst::new();
        for i in 0..count {
            let mut b = pool.alloc().expect("buffer");
            b.extend_from_slice(&frame(i)).expect("room");
            ring.push(b);
        }
        LoopPort {
            ring,
            caps: PortCaps {
                name: "loop".into(),
                mac,
                mtu: 1500,
                queues: 1,
                queue: 0,
                rx_offloads: Offloads::default(),
                tx_offloads: Offloads::default(),
                rss: false,
                flow_rules: false,
            },
            pool,
        }
    }
}

impl Port for LoopPort {
    type Buf = PoolBuf;
    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        let n = self.ring.len().min(rx.remaining());
        rx.extend(self.ring.drain_front(n));
        n
    }
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let n = tx.len().min(self.ring.remaining());
        self.ring.extend(tx.drain_front(n));
        n
    }
    fn pool(&self) -> &Pool {
        &self.pool
    }
    fn caps(&self) -> &PortCaps {
        &self.caps
    }
}

/// A [`LoopPort`] whose buffers all hold one request, rewritten as each is
/// received again: for stages that turn requests into replies in place.
pub struct ReplayPort {
    inner: LoopPort,
    request: Vec<u8>,
}

impl ReplayPort {
    /// `count` buffers (at most [`LOOP_CAPACITY`]) holding `request`.
    pub fn new(count: usize, mac: MacAddr, request: Vec<u8>) -> Self {
        ReplayPort {
            inner: LoopPort::new(count, mac, |_| request.clone()),
            request,
        }
    }
}

impl Port for ReplayPort {
    type Buf = PoolBuf;
    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        let before = rx.len();
        let n = self.inner.rx_burst(rx);
        for b in &mut rx.as_mut_slice()[before..] {
            b.data_mut().copy_from_slice(&self.request);
        }
        n
    }
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.inner.tx_burst(tx)
    }
    fn pool(&self) -> &Pool {
        self.inner.pool()
    }
    fn caps(&self) -> &PortCaps {
        self.inner.caps()
    }
}
