//! Keeping the kernel's ephemeral ports off tpa's local port range.
//!
//! tpa and the kernel share the host's IP address: a connection the
//! kernel opens from a port in tpa's range would have its replies taken
//! by tpa's XDP program. [`ReservedPorts`] adds tpa's range to
//! `net.ipv4.ip_local_reserved_ports` (which also covers IPv6), so the
//! kernel never picks those ports as ephemeral ports (explicit binds still
//! may), and writes back the previous value when dropped. The setting
//! belongs to the network namespace of the thread that opens it. After a
//! kill -9 the reservation stays until reset by hand (`sysctl -w
//! net.ipv4.ip_local_reserved_ports=...`): it only narrows the kernel's
//! choice of ephemeral ports.

use std::io;
use std::ops::RangeInclusive;

const PATH: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// tpa's range reserved from the kernel's ephemeral ports while this
/// value lives.
#[derive(Debug)]
pub struct ReservedPorts {
    previous: String,
}

impl ReservedPorts {
    /// Adds `range` to the reserved ports, remembering the value before.
    pub fn reserve(range: RangeInclusive<u16>) -> io::Result<ReservedPorts> {
        let previous = std::fs::read_to_string(PATH)?.trim().to_owned();
        let ours = format!("{}-{}", range.start(), range.end());
        let value = if previous.is_empty() {
            ours
        } else {
            format!("{previous},{ours}")
        };
        std::fs::write(PATH, value)?;
        Ok(ReservedPorts { previous })
    }

    /// The value that will be written back.
    pub fn previous(&self) -> &str {
        &self.previous
    }
}

impl Drop for ReservedPorts {
    fn drop(&mut self) {
        // An empty write is refused by some kernels; "" and "\n" both mean none.
        let _ = std::fs::write(PATH, format!("{}\n", self.previous));
    }
}
