//! A port without a wire, for measuring what runs between receive and
//! transmit: the buffers it transmits are the ones it receives next.

use tpa::buf::{PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::{Burst, Offloads, Port, PortCaps};
use tpa::wire::MacAddr;

/// The most buffers a [`LoopPort`] circulates.
pub const LOOP_CAPACITY: usize = 64;

/// A port that receives the buffers it transmitted: a fixed set of buffers
/// circulates, so every receive sees whatever was sent back, with no copy
/// and no allocation. Replaying, it rewrites each buffer with one request
/// as it hands it over, for stages that turn requests into replies in
/// place.
///
/// ```
/// use tpa::buf::{PacketBuf, PoolBuf};
/// use tpa::port::{Burst, Port};
/// use tpa::wire::MacAddr;
/// use tpa_benches::loop_port::LoopPort;
///
/// let mut port = LoopPort::recycling(4, MacAddr([2, 0, 0, 0, 0, 1]), |i| vec![i as u8; 60]);
/// let mut rx: Burst<PoolBuf> = Burst::new();
/// assert_eq!(port.rx_burst(&mut rx), 4);
/// assert_eq!(rx.as_slice()[3].data()[0], 3);
/// assert_eq!(port.tx_burst(&mut rx), 4);
/// ```
pub struct LoopPort {
    ring: Burst<PoolBuf, LOOP_CAPACITY>,
    replay: Option<Vec<u8>>,
    caps: PortCaps,
    _pool: Pool,
}

impl LoopPort {
    /// `count` buffers (at most [`LOOP_CAPACITY`]), buffer `i` holding
    /// `frame(i)`, received back as they were transmitted.
    pub fn recycling(count: usize, mac: MacAddr, frame: impl Fn(usize) -> Vec<u8>) -> Self {
        LoopPort::with_frames(count, mac, frame, None)
    }

    /// `count` buffers (at most [`LOOP_CAPACITY`]), each rewritten with
    /// `request` every time it is received.
    pub fn replaying(count: usize, mac: MacAddr, request: Vec<u8>) -> Self {
        let first = request.clone();
        LoopPort::with_frames(count, mac, |_| first.clone(), Some(request))
    }

    fn with_frames(
        count: usize,
        mac: MacAddr,
        frame: impl Fn(usize) -> Vec<u8>,
        replay: Option<Vec<u8>>,
    ) -> Self {
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
            replay,
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
            _pool: pool,
        }
    }
}

impl Port for LoopPort {
    type Buf = PoolBuf;
    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        let n = self.ring.len().min(rx.remaining());
        match &self.replay {
            None => rx.extend(self.ring.drain_front(n)),
            Some(request) => {
                for mut b in self.ring.drain_front(n) {
                    b.data_mut().copy_from_slice(request);
                    rx.push(b);
                }
            }
        }
        n
    }
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let n = tx.len().min(self.ring.remaining());
        self.ring.extend(tx.drain_front(n));
        n
    }
    fn alloc(&mut self) -> Option<PoolBuf> {
        None
    }
    fn caps(&self) -> &PortCaps {
        &self.caps
    }
}
