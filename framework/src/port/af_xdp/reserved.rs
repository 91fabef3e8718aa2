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

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::RangeInclusive;

const PATH: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// tpa's range reserved from the kernel's ephemeral ports while this
/// value lives.
#[derive(Debug)]
pub struct ReservedPorts {
    previous: String,
    /// Opened in the namespace reserved in, which a later write through
    /// it changes, whatever namespace the dropping thread is in.
    file: File,
}

impl ReservedPorts {
    /// Adds `range` to the reserved ports, remembering the value before.
    pub fn reserve(range: RangeInclusive<u16>) -> io::Result<ReservedPorts> {
        let mut file = File::options().read(true).write(true).open(PATH)?;
        let mut previous = String::new();
        file.read_to_string(&mut previous)?;
        let previous = previous.trim().to_owned();
        let ours = format!("{}-{}", range.start(), range.end());
        let value = if previous.is_empty() {
            ours
        } else {
            format!("{previous},{ours}")
        };
        write_at_start(&mut file, &value)?;
        Ok(ReservedPorts { previous, file })
    }

    /// The value that will be written back.
    pub fn previous(&self) -> &str {
        &self.previous
    }
}

/// Writes `value` as the sysctl's whole new value.
fn write_at_start(file: &mut File, value: &str) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    file.write_all(format!("{value}\n").as_bytes())
}

impl Drop for ReservedPorts {
    fn drop(&mut self) {
        let previous = std::mem::take(&mut self.previous);
        if let Err(e) = write_at_start(&mut self.file, &previous) {
            tracing::warn!("cannot restore ip_local_reserved_ports to {previous:?}: {e}");
        }
    }
}
