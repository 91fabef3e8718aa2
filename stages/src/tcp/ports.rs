//! Local ports for active opens: from the configured range, free for the
//! remote end, and landing on this worker's receive queue.

use std::net::{IpAddr, SocketAddr};

use tpa::app::SocketError;
use tpa::port::steer::{PickError, Steering, L4};

/// Chooses ephemeral ports in `first..=last`, starting from a seeded
/// position and going on from the last choice (so consecutive opens get
/// different ports, and a replayed seed the same ones).
///
/// ```
/// use tpa::port::steer::Steering;
/// use tpa_stages::tcp::ports::PortPicker;
/// let mut p = PortPicker::new(40000, 40003, 0);
/// let remote = "192.0.2.2:80".parse().unwrap();
/// let local = "192.0.2.1".parse().unwrap();
/// let a = p.pick(&Steering::Single, 0, local, remote, |_| true).unwrap();
/// let b = p.pick(&Steering::Single, 0, local, remote, |port| port != a + 1).unwrap();
/// assert_eq!((a, b), (40000, 40002));
/// ```
#[derive(Debug, Clone)]
pub struct PortPicker {
    first: u16,
    last: u16,
    next: u16,
}

impl PortPicker {
    /// A picker over `first..=last` (swapped when given the wrong way
    /// round; port 0 is never chosen) starting at an offset drawn from
    /// `seed`.
    pub fn new(first: u16, last: u16, seed: u64) -> Self {
        let (first, last) = (first.min(last).max(1), last.max(first).max(1));
        let span = u64::from(last - first) + 1;
        let next = first + (seed % span) as u16;
        PortPicker { first, last, next }
    }

    /// A port for a connection from `local` to `remote` whose replies
    /// land on `queue` by `steering`, for which `free` says yes. Every
    /// port of the range is looked at once at most (the search is bounded
    /// by the range). Where the port cannot tell where flows land
    /// ([`Steering::Unknown`]), any free port is taken: the replies may
    /// then arrive on another worker, whose steering guard hands them
    /// over.
    ///
    /// # Errors
    ///
    /// [`AddressNotAvailable`](SocketError::AddressNotAvailable) when no
    /// port of the range is free and lands on `queue` (EADDRNOTAVAIL, as
    /// Linux when its ephemeral range is exhausted);
    /// [`InvalidArgument`](SocketError::InvalidArgument) for addresses of
    /// two families.
    pub fn pick(
        &mut self,
        steering: &Steering,
        queue: u16,
        local: IpAddr,
        remote: SocketAddr,
        mut free: impl FnMut(u16) -> bool,
    ) -> Result<u16, SocketError> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(SocketError::InvalidArgument);
        }
        let start = self.next;
        let halves = [(start, self.last), (self.first, start.saturating_sub(1))];
        for (from, to) in halves {
            if from > to || to < self.first {
                continue;
            }
            let found = match steering {
                Steering::Unknown => (from..=to).find(|&p| free(p)).ok_or(PickError::NoPortLands),
                _ => steering.pick_local_port(L4::Tcp, local, remote, from..=to, queue, &mut free),
            };
            match found {
                Ok(port) => {
                    self.next = if port == self.last {
                        self.first
                    } else {
                        port + 1
                    };
                    return Ok(port);
                }
                Err(PickError::MixedFamilies) => return Err(SocketError::InvalidArgument),
                Err(_) => {}
            }
        }
        Err(SocketError::AddressNotAvailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::port::steer::Flow;

    fn remote() -> SocketAddr {
        "192.0.2.2:443".parse().unwrap()
    }

    fn local() -> IpAddr {
        "192.0.2.1".parse().unwrap()
    }

    #[test]
    fn ports_land_on_the_asked_queue_and_move_on() {
        let steering = Steering::Symmetric { queues: 4 };
        let mut p = PortPicker::new(32768, 60999, 12345);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let port = p.pick(&steering, 3, local(), remote(), |_| true).unwrap();
            assert!((32768..=60999).contains(&port));
            let replies = Flow::new(L4::Tcp, remote(), SocketAddr::new(local(), port));
            assert_eq!(steering.queue_of(&replies), Some(3));
            assert!(seen.insert(port), "port {port} chosen twice");
        }
    }

    #[test]
    fn the_search_wraps_and_says_when_the_range_is_exhausted() {
        let mut p = PortPicker::new(100, 103, 2);
        let single = Steering::Single;
        let got: Vec<u16> = (0..4)
            .map(|_| p.pick(&single, 0, local(), remote(), |_| true).unwrap())
            .collect();
        assert_eq!(got, [102, 103, 100, 101]);
        assert_eq!(
            p.pick(&single, 0, local(), remote(), |_| false),
            Err(SocketError::AddressNotAvailable)
        );
        // Unknown steering: any free port.
        let port = p
            .pick(&Steering::Unknown, 5, local(), remote(), |p| p == 101)
            .unwrap();
        assert_eq!(port, 101);
        let v6: SocketAddr = "[2001:db8::2]:80".parse().unwrap();
        assert_eq!(
            p.pick(&single, 0, local(), v6, |_| true),
            Err(SocketError::InvalidArgument)
        );
        // A one-port range with the seed beyond it.
        let mut one = PortPicker::new(7, 7, u64::MAX);
        assert_eq!(one.pick(&single, 0, local(), remote(), |_| true), Ok(7));
        assert_eq!(one.pick(&single, 0, local(), remote(), |_| true), Ok(7));
    }
}
