//! Running on Mellanox/NVIDIA ConnectX NICs (DPDK's mlx5 driver): flow
//! bifurcation and offload choices.
//!
//! mlx5 is a bifurcated driver: the kernel keeps its netdev while DPDK
//! drives queues of the same port. With the port in flow isolation mode,
//! only traffic matching tpa's `rte_flow` rules reaches tpa's queues; the
//! kernel keeps everything else (ARP, ICMP, SSH, other applications).
//!
//! - [`rules`](Bifurcation::rules): plain-data rules (ETH / IPV4 dst / TCP
//!   dst port or port block → MARK + QUEUE or RSS), built and tested without
//!   DPDK. Listening ports are spread by RSS over every worker; each
//!   worker's active-open port range (as value/mask blocks,
//!   [`port_range_masks`]) goes to that worker's queue, so replies land
//!   where the connection lives. The MARK id ([`FlowMark`]) tells the
//!   classify stage which rule matched.
//! - [`OffloadPlan`]: what runs in hardware and what falls back to software
//!   (classification, checksums, TSO), logged once.
//! - [`FlowClassify`]: the first stage of the pipeline: the NIC's mark, or
//!   the same rules in software, tag the application's frames; the rest goes
//!   to the host.
//! - [`HostReturn`]: the stage that reads what the pipeline's `#[host]`
//!   port received (what the kernel answers) and sends it out of the NIC.
//! - `convert`/`install`/`bifurcate` (feature `dpdk`): have DPDK's
//!   `rte_flow_conv` copy each rule (proof only that DPDK knows every item
//!   and action type and their sizes), validate the copies with
//!   `rte_flow_validate`, create them, and remove them on drop. No driver
//!   available to the tests accepts them; see doc/guide/dpdk.md.
//! - `ConnectionMarks` (feature `dpdk`): a rule per TCP connection
//!   ([`FlowRule::connection`]) marking its segments with the connection's
//!   slot for the TCP classify fast path; the first refusal turns it off,
//!   counted and logged once.

mod classify;
mod fallback;
mod host;
#[cfg(feature = "dpdk")]
mod install;
#[cfg(feature = "dpdk")]
mod marks;
mod rules;
#[cfg(test)]
mod test_plan;

pub use classify::{
    Classified, ClassifyCounters, FlowClassify, FrameClass, MarkSource, NeighborFrames,
};
pub use fallback::{Engine, OffloadPlan, Steering};
pub use host::{HostReturn, RETURN_BURST};
#[cfg(feature = "dpdk")]
pub use install::{
    bifurcate, convert, install, ConvertedAction, ConvertedItem, ConvertedRule, InstalledRules,
    RuleAttr, RuleRefused,
};
#[cfg(feature = "dpdk")]
pub use marks::{ConnectionMarks, MarkCounters};
pub use rules::{
    port_range_masks, split_port_range, Bifurcation, BifurcationError, FlowAction, FlowItem,
    FlowMark, FlowRule, MaskedPort, WorkerSteering,
};
