//! The DPDK port (feature `dpdk`): a DPDK ethdev — written for mlx5,
//! tested on the `net_ring`, `net_tap`, `net_memif` and `net_af_packet`
//! vdevs — with DPDK mbufs used directly as tpa's packet buffers.
//!
//! - [`Eal`]: the one-per-process DPDK initialisation; [`EalThread`]: a
//!   worker thread registered with it (lcore id, mempool cache).
//! - [`DpdkDevice`]: an ethdev configured with one queue pair and one
//!   [`Mempool`] per worker (RSS across them when there are several);
//!   [`DpdkDevice::ring_pair`] makes two `net_ring` ports wired together.
//! - [`DpdkPort`]: one queue pair as a [`Port`](crate::port::Port), with
//!   the packets' transmit offload requests mapped onto the device (or done
//!   in software, see [`offload`](crate::port::offload)).
//! - [`Mbuf`]: an owned `rte_mbuf` implementing
//!   [`PacketBuf`](crate::buf::PacketBuf), its [`Meta`](crate::buf::Meta) in
//!   the mbuf's private area.
//! - [`ExtMemRegion`]: application memory registered with DPDK (and DMA
//!   mapped for the device) so it can be sent without copying.
//! - [`sys`]: the raw bindings, for stages that use DPDK features this
//!   module does not wrap (rte_flow in the mlx5 stage).

mod device;
mod eal;
mod extmem;
mod mbuf;
mod pool;
mod port;
mod shared;
mod steer;

pub use device::{DeviceConfig, DeviceStats, DpdkDevice};
pub use eal::{Eal, EalThread};
pub use extmem::{DmaMapping, ExtBufOwner, ExtMemRegion};
pub use mbuf::{Mbuf, MBUF_PRIV_SIZE, META_PRIV_SIZE};
pub use pool::{Mempool, MempoolStats, PoolConfig};
pub use port::DpdkPort;
pub use steer::{
    reta_from_groups, reta_groups, rss_fields, softrss, NoRss, RssLimits, RssPlan, RSS_HASH_TYPES,
};

/// The raw DPDK bindings (`dpdk-sys`).
pub use dpdk_sys as sys;

/// A [`PortError::Dpdk`](crate::port::PortError::Dpdk) for `op` on `name`
/// failing with DPDK error `code` (either sign), described by `rte_strerror`.
pub fn dpdk_error(name: &str, op: &'static str, code: i32) -> crate::port::PortError {
    eal::dpdk_error(name, op, code)
}

/// DPDK's description of error number `code` (either sign; DPDK's own
/// codes included), from `rte_strerror`.
pub fn strerror(code: i32) -> String {
    eal::strerror(code)
}

/// DPDK's per-thread error number, `rte_errno`.
pub fn rte_errno() -> i32 {
    eal::errno()
}
