//! Per-connection flow rules for the TCP classify stage's flow-mark fast
//! path ([`tcp::classify`](crate::tcp::classify)): one `rte_flow` rule per
//! connection ([`FlowRule::connection`]: its address, IPv4 or IPv6, and
//! ports → MARK the
//! connection's mark + QUEUE its worker's queue), installed when it opens
//! and removed when it closes.
//!
//! Each rule is validated by the driver first ([`install`]). The first
//! refusal turns the installer off for good: counted, logged once, and
//! every connection after it is left to the hash lookup, which finds it
//! as it would without marks (the mark is an optimisation, never needed
//! for correctness). Only mlx5 is expected to take the rules; every vdev
//! available here refuses them.

use std::collections::HashMap;
use std::net::SocketAddr;

use tpa::port::dpdk::DpdkDevice;

use super::install::{install, InstalledRules, RuleRefused};
use super::rules::FlowRule;

/// What a [`ConnectionMarks`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkCounters {
    /// Rules installed.
    pub installed: u64,
    /// Rules removed (their connection closed).
    pub removed: u64,
    /// Rules the driver refused (at most one: the first turns marking
    /// off).
    pub refused: u64,
    /// Connections left without a rule: refused, after a refusal, or
    /// with addresses of two families.
    pub unmarked: u64,
}

/// The connection rules of one worker's queue on a device.
#[derive(Debug)]
pub struct ConnectionMarks {
    device: DpdkDevice,
    queue: u16,
    priority: u32,
    rules: HashMap<u32, InstalledRules>,
    refused: Option<RuleRefused>,
    counters: MarkCounters,
}

impl ConnectionMarks {
    /// Rules steering to `queue` of `device`, at `priority` (lower is
    /// stronger: a connection's rule must win over the listener and
    /// port-block rules of a [`Bifurcation`](super::Bifurcation), so give
    /// those a higher number).
    pub fn new(device: &DpdkDevice, queue: u16, priority: u32) -> ConnectionMarks {
        ConnectionMarks {
            device: device.clone(),
            queue,
            priority,
            rules: HashMap::new(),
            refused: None,
            counters: MarkCounters::default(),
        }
    }

    /// Installs the rule marking the segments from `remote` to `local`
    /// with `mark` (the connection's,
    /// [`TcpSockets::flow_mark`](crate::tcp::TcpSockets::flow_mark));
    /// whether the NIC now marks them. `false` (counted as unmarked) once
    /// the driver has refused a rule, and for addresses of two families.
    pub fn add(&mut self, mark: u32, local: SocketAddr, remote: SocketAddr) -> bool {
        if self.refused.is_some() || local.is_ipv4() != remote.is_ipv4() {
            self.counters.unmarked += 1;
            return false;
        }
        let rule = FlowRule::connection(local, remote.port(), mark, self.queue, self.priority);
        match install(&self.device, &[rule]) {
            Ok(installed) => {
                // A rule left under the same mark (its slot reused) goes.
                if self.rules.insert(mark, installed).is_some() {
                    self.counters.removed += 1;
                }
                self.counters.installed += 1;
                true
            }
            Err(refused) => {
                tracing::warn!(
                    device = self.device.name(),
                    queue = self.queue,
                    %refused,
                    "connection flow rules refused: connections are found by their 4-tuple's hash"
                );
                self.refused = Some(refused);
                self.counters.refused += 1;
                self.counters.unmarked += 1;
                false
            }
        }
    }

    /// Removes the rule of `mark` (its connection closed); whether there
    /// was one.
    pub fn remove(&mut self, mark: u32) -> bool {
        let had = self.rules.remove(&mark).is_some();
        if had {
            self.counters.removed += 1;
        }
        had
    }

    /// Rules installed now.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The driver's refusal that turned marking off, if one did.
    pub fn refused(&self) -> Option<&RuleRefused> {
        self.refused.as_ref()
    }

    /// What it did.
    pub fn counters(&self) -> MarkCounters {
        self.counters
    }
}
