//! The bifurcation plans the unit tests of this module build their cases on.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use super::{split_port_range, Bifurcation, WorkerSteering};

/// `local_ports` split between `workers` workers, worker `q` on queue `q`.
pub(super) fn steering(local_ports: RangeInclusive<u16>, workers: u16) -> Vec<WorkerSteering> {
    split_port_range(local_ports, workers)
        .into_iter()
        .enumerate()
        .map(|(q, local_ports)| WorkerSteering {
            queue: q as u16,
            local_ports,
        })
        .collect()
}

/// A plan for `address` that listens on ports 6379 and 26379 and splits
/// `local_ports` between two workers (queues 0 and 1), at priority 0.
pub(super) fn two_workers(address: Ipv4Addr, local_ports: RangeInclusive<u16>) -> Bifurcation {
    Bifurcation {
        addresses: vec![address],
        listen_ports: vec![6379, 26379],
        workers: steering(local_ports, 2),
        priority: 0,
    }
}
