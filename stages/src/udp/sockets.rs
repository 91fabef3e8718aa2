//! The UDP socket table: a part of the pipeline state.
//!
//! Sockets live in slots with generations (a handle to a closed socket
//! fails with `EBADF` even after its slot is reused); a hash map finds the
//! socket of a received datagram by its destination address and port,
//! exact binds first, then the family's unspecified address.

use crate::hash::SeededHash;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tpa::app::{SocketError, SocketId, Transport};
use tpa::buf::{ByteBudget, PacketBuf};
use tpa::port::SharedHost;

use super::Datagram;
use crate::iface::Interface;

/// The table's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// Sockets open at once, at most.
    pub capacity: usize,
    /// Bytes of datagrams a socket's receive queue holds before it drops
    /// new ones (each costs its frame's length, at least
    /// [`MIN_CHARGE`](super::MIN_CHARGE)).
    pub receive_limit: usize,
    /// The first port [`bind`](UdpSockets::bind) picks for port 0.
    pub ephemeral_first: u16,
}

impl Default for UdpConfig {
    /// 1024 sockets, 256 KiB per receive queue, ephemeral ports from
    /// 49152 (RFC 6335).
    fn default() -> Self {
        UdpConfig {
            capacity: 1024,
            receive_limit: 256 * 1024,
            ephemeral_first: 49152,
        }
    }
}

/// What happened on one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounters {
    /// Datagrams queued for the application.
    pub received: u64,
    /// Datagrams dropped because the receive queue was at its byte limit.
    pub dropped_full: u64,
    /// Datagrams handed to the egress path.
    pub sent: u64,
    /// Sends refused at once (no route, too long, no buffer…).
    pub send_errors: u64,
    /// ICMP errors about its datagrams (port unreachable…), each kept as
    /// the socket's pending error.
    pub icmp_errors: u64,
}

impl core::fmt::Display for SocketCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "received {} dropped-full {} sent {} send-errors {} icmp-errors {}",
            self.received, self.dropped_full, self.sent, self.send_errors, self.icmp_errors
        )
    }
}

/// An open socket.
#[derive(Debug)]
struct Socket<B> {
    /// The bound address and port (kept apart: the send path reads them
    /// without building a `SocketAddr`).
    ip: IpAddr,
    port: u16,
    queue: VecDeque<Datagram<B>>,
    budget: ByteBudget,
    counters: SocketCounters,
    /// Whether the application was told the socket is readable since its
    /// queue was last empty.
    notified: bool,
    /// The last ICMP error about its datagrams and the peer it concerns,
    /// until [`take_error`](UdpSockets::take_error).
    error: Option<(SocketError, SocketAddr)>,
}

/// A slot of the table: its generation and its socket, when open.
#[derive(Debug)]
struct Slot<B> {
    generation: u32,
    socket: Option<Socket<B>>,
}

/// The bindings: our own addresses and ports, so the seed does not matter
/// ([`SeededHash`]'s default).
type KeyMap = HashMap<(IpAddr, u16), u32, SeededHash>;

/// The unspecified address of `ip`'s family.
#[inline]
fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// The UDP sockets of a pipeline: a part of its `#[state]`, filled by
/// [`UdpInput`](super::UdpInput) and read and written by the application
/// through [`recv`](super::recv), [`send_to`](super::send_to) and
/// [`send_buf_to`](super::send_buf_to).
///
/// A socket is bound to one of the interface's addresses or to the
/// unspecified address of a family (`0.0.0.0` takes every IPv4 address,
/// `[::]` every IPv6 one: IPv6 sockets are IPv6-only), and a port. A
/// datagram goes to the socket bound to its exact destination, else to the
/// wildcard of its family.
///
/// ```
/// use tpa::app::SocketError;
/// use tpa::buf::PoolBuf;
/// use tpa::wire::MacAddr;
/// use tpa_stages::iface::Interface;
/// use tpa_stages::udp::UdpSockets;
///
/// let iface = Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
///     .with_ipv4("192.0.2.1/24".parse().unwrap());
/// let mut sockets = UdpSockets::<PoolBuf>::default();
/// let echo = sockets.bind("0.0.0.0:7".parse().unwrap(), &iface).unwrap();
/// assert_eq!(
///     sockets.bind("192.0.2.1:7".parse().unwrap(), &iface),
///     Err(SocketError::AddressInUse),
/// );
/// assert_eq!(
///     sockets.bind("192.0.2.9:8".parse().unwrap(), &iface),
///     Err(SocketError::AddressNotAvailable),
/// );
/// assert_eq!(sockets.lookup("192.0.2.1".parse().unwrap(), 7), Some(echo));
/// sockets.close(echo).unwrap();
/// assert_eq!(sockets.close(echo), Err(SocketError::BadSocket));
/// ```
#[derive(Debug)]
pub struct UdpSockets<B> {
    slots: Vec<Slot<B>>,
    free: Vec<u32>,
    bound: KeyMap,
    /// Sockets bound to one specific address: while none is, a lookup asks
    /// the map once, for the wildcard.
    exact_binds: usize,
    next_ephemeral: u16,
    config: UdpConfig,
    /// The port beside the host's kernel told of bound ports.
    shared_host: Option<Arc<dyn SharedHost>>,
}

impl<B> Default for UdpSockets<B> {
    fn default() -> Self {
        UdpSockets::new(UdpConfig::default())
    }
}

impl<B> UdpSockets<B> {
    /// An empty table with `config`'s limits (room allocated up front).
    pub fn new(config: UdpConfig) -> Self {
        UdpSockets {
            slots: Vec::with_capacity(config.capacity),
            free: Vec::with_capacity(config.capacity),
            bound: KeyMap::with_capacity_and_hasher(config.capacity, Default::default()),
            exact_binds: 0,
            next_ephemeral: config.ephemeral_first,
            config,
            shared_host: None,
        }
    }

    /// Tells `host` (a port beside the host's kernel) of every port a
    /// socket binds or the last socket on it closes, so the port hands
    /// tpa that port's datagrams.
    pub fn set_shared_host(&mut self, host: Arc<dyn SharedHost>) {
        self.shared_host = Some(host);
    }

    /// The table's limits.
    pub fn config(&self) -> &UdpConfig {
        &self.config
    }

    /// Sockets open now.
    pub fn len(&self) -> usize {
        self.bound.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// Opens a socket bound to `local` (one of `iface`'s addresses or an
    /// unspecified one; port 0 picks a free ephemeral port).
    ///
    /// # Errors
    ///
    /// [`AddressNotAvailable`](SocketError::AddressNotAvailable) for an
    /// address not `iface`'s, [`AddressInUse`](SocketError::AddressInUse)
    /// when the address and port (or the port on the family's wildcard, or
    /// any address's port for a wildcard) are taken,
    /// [`NoBuffers`](SocketError::NoBuffers) when the table is full or no
    /// ephemeral port is free.
    pub fn bind(&mut self, local: SocketAddr, iface: &Interface) -> Result<SocketId, SocketError> {
        let ip = local.ip();
        let ours = match ip {
            IpAddr::V4(a) => a.is_unspecified() || iface.owns_ipv4(a),
            IpAddr::V6(a) => a.is_unspecified() || iface.owns_ipv6(a),
        };
        if !ours {
            return Err(SocketError::AddressNotAvailable);
        }
        if self.bound.len() >= self.config.capacity {
            return Err(SocketError::NoBuffers);
        }
        let port = match local.port() {
            0 => self.ephemeral_port(ip).ok_or(SocketError::NoBuffers)?,
            port => {
                if self.conflicts(ip, port) {
                    return Err(SocketError::AddressInUse);
                }
                port
            }
        };
        if let Some(host) = &self.shared_host {
            if let Err(e) = host.open_port(Transport::Udp, port) {
                tracing::warn!("bind udp {ip}:{port}: the port stays the kernel's: {e}");
                return Err(SocketError::AddressNotAvailable);
            }
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    socket: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.socket = Some(Socket {
            ip,
            port,
            queue: VecDeque::new(),
            budget: ByteBudget::new(self.config.receive_limit),
            counters: SocketCounters::default(),
            notified: false,
            error: None,
        });
        self.bound.insert((ip, port), index);
        if !ip.is_unspecified() {
            self.exact_binds += 1;
        }
        Ok(SocketId::new(Transport::Udp, index, slot.generation))
    }

    /// Whether binding `ip:port` would clash with a socket open now.
    fn conflicts(&self, ip: IpAddr, port: u16) -> bool {
        if self.bound.contains_key(&(ip, port)) {
            return true;
        }
        let wildcard = unspecified_like(ip);
        if ip != wildcard {
            return self.bound.contains_key(&(wildcard, port));
        }
        // A wildcard clashes with any address of its family on the port.
        self.bound
            .keys()
            .any(|&(a, p)| p == port && unspecified_like(a) == wildcard)
    }

    /// A free port for `ip` from the ephemeral range, round robin.
    fn ephemeral_port(&mut self, ip: IpAddr) -> Option<u16> {
        let first = self.config.ephemeral_first.max(1);
        let range = u32::from(u16::MAX - first) + 1;
        for _ in 0..range {
            let port = self.next_ephemeral.max(first);
            self.next_ephemeral = port.checked_add(1).unwrap_or(first);
            if !self.conflicts(ip, port) {
                return Some(port);
            }
        }
        None
    }

    /// Closes `socket`: its queued datagrams are released and its handle
    /// (and every copy of it) becomes invalid.
    ///
    /// # Errors
    ///
    /// [`BadSocket`](SocketError::BadSocket) for a handle that is not an
    /// open UDP socket's.
    pub fn close(&mut self, socket: SocketId) -> Result<(), SocketError> {
        let slot = self.slot_mut(socket)?;
        let Some(closed) = slot.socket.take() else {
            return Err(SocketError::BadSocket);
        };
        slot.generation = slot.generation.wrapping_add(1);
        let key = (closed.ip, closed.port);
        self.bound.remove(&key);
        if !key.0.is_unspecified() {
            self.exact_binds -= 1;
        }
        self.free.push(socket.index);
        let last = !self.bound.keys().any(|&(_, p)| p == key.1);
        if let (true, Some(host)) = (last, &self.shared_host) {
            if let Err(e) = host.close_port(Transport::Udp, key.1) {
                tracing::warn!("udp port {} stays steered to tpa: {e}", key.1);
            }
        }
        Ok(())
    }

    /// The socket a datagram to `ip:port` goes to: the one bound to exactly
    /// that, else the one bound to the family's unspecified address.
    #[inline]
    pub fn lookup(&self, ip: IpAddr, port: u16) -> Option<SocketId> {
        let exact = if self.exact_binds > 0 {
            self.bound.get(&(ip, port))
        } else {
            None
        };
        let index = *exact.or_else(|| self.bound.get(&(unspecified_like(ip), port)))?;
        let generation = self.slots[index as usize].generation;
        Some(SocketId::new(Transport::Udp, index, generation))
    }

    /// The slot `socket` names, if the handle is a UDP one in range and of
    /// the slot's generation.
    #[inline]
    fn slot_mut(&mut self, socket: SocketId) -> Result<&mut Slot<B>, SocketError> {
        if socket.transport != Transport::Udp {
            return Err(SocketError::BadSocket);
        }
        match self.slots.get_mut(socket.index as usize) {
            Some(slot) if slot.generation == socket.generation => Ok(slot),
            _ => Err(SocketError::BadSocket),
        }
    }

    /// The open socket `socket` names.
    #[inline]
    fn socket_mut(&mut self, socket: SocketId) -> Result<&mut Socket<B>, SocketError> {
        self.slot_mut(socket)?
            .socket
            .as_mut()
            .ok_or(SocketError::BadSocket)
    }

    /// The open socket `socket` names, to read.
    #[inline]
    fn socket(&self, socket: SocketId) -> Result<&Socket<B>, SocketError> {
        if socket.transport != Transport::Udp {
            return Err(SocketError::BadSocket);
        }
        match self.slots.get(socket.index as usize) {
            Some(Slot {
                generation,
                socket: Some(s),
            }) if *generation == socket.generation => Ok(s),
            _ => Err(SocketError::BadSocket),
        }
    }

    /// The address and port `socket` is bound to.
    ///
    /// # Errors
    ///
    /// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
    pub fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, SocketError> {
        self.socket(socket).map(|s| SocketAddr::new(s.ip, s.port))
    }

    /// The address and port `socket` is bound to, apart.
    #[inline]
    pub(crate) fn local(&self, socket: SocketId) -> Result<(IpAddr, u16), SocketError> {
        self.socket(socket).map(|s| (s.ip, s.port))
    }

    /// What happened on `socket` so far.
    ///
    /// # Errors
    ///
    /// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
    pub fn counters(&self, socket: SocketId) -> Result<SocketCounters, SocketError> {
        self.socket(socket).map(|s| s.counters)
    }

    /// Datagrams waiting on `socket` and the bytes they cost its budget.
    ///
    /// # Errors
    ///
    /// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
    pub fn queued(&self, socket: SocketId) -> Result<(usize, usize), SocketError> {
        self.socket(socket)
            .map(|s| (s.queue.len(), s.budget.held()))
    }

    /// Every open socket: its handle, its address and its counters.
    pub fn iter(&self) -> impl Iterator<Item = (SocketId, SocketAddr, SocketCounters)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let s = slot.socket.as_ref()?;
            let id = SocketId::new(Transport::Udp, index as u32, slot.generation);
            Some((id, SocketAddr::new(s.ip, s.port), s.counters))
        })
    }

    /// The pending ICMP error of `socket` and the peer it concerns,
    /// cleared by the call (Linux's `SO_ERROR`): the last one kept since
    /// the previous call, or `None`.
    ///
    /// # Errors
    ///
    /// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
    pub fn take_error(
        &mut self,
        socket: SocketId,
    ) -> Result<Option<(SocketError, SocketAddr)>, SocketError> {
        Ok(self.socket_mut(socket)?.error.take())
    }

    /// Keeps `error` about a datagram of `socket`'s to `peer` as its
    /// pending error, counted; false for a stale handle.
    pub(crate) fn note_error(
        &mut self,
        socket: SocketId,
        error: SocketError,
        peer: SocketAddr,
    ) -> bool {
        let Ok(s) = self.socket_mut(socket) else {
            return false;
        };
        s.counters.icmp_errors += 1;
        s.error = Some((error, peer));
        true
    }

    /// Counts a send on `socket`: handed on when `ok`, refused otherwise.
    #[inline]
    pub(crate) fn count_send(&mut self, socket: SocketId, ok: bool) {
        if let Ok(s) = self.socket_mut(socket) {
            if ok {
                s.counters.sent += 1;
            } else {
                s.counters.send_errors += 1;
            }
        }
    }
}

/// What became of a datagram offered to a socket's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// Queued; the application knows the socket is readable.
    Behind,
    /// Queued, and the application has not been told the socket is
    /// readable since its queue was last empty (it just became readable,
    /// or the event could not be queued before): raise
    /// [`EventKind::Readable`](tpa::app::EventKind) and call
    /// [`notified`](UdpSockets::notified).
    First,
    /// Dropped: the queue is at its byte limit.
    Full,
}

impl<B: PacketBuf> UdpSockets<B> {
    /// Queues `datagram` on `socket` within its byte limit (dropping it,
    /// counted, over the limit).
    #[inline]
    pub(crate) fn enqueue(&mut self, socket: SocketId, datagram: Datagram<B>) -> Queued {
        let Ok(s) = self.socket_mut(socket) else {
            return Queued::Full;
        };
        if s.budget.try_take(datagram.charge()).is_err() {
            s.counters.dropped_full += 1;
            return Queued::Full;
        }
        s.counters.received += 1;
        s.queue.push_back(datagram);
        if s.notified {
            Queued::Behind
        } else {
            Queued::First
        }
    }

    /// Records that the application was told `socket` is readable; it is
    /// told again once its queue has been emptied and refilled.
    #[inline]
    pub(crate) fn notified(&mut self, socket: SocketId) {
        if let Ok(s) = self.socket_mut(socket) {
            s.notified = true;
        }
    }

    /// The oldest datagram waiting on `socket`.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](SocketError::WouldBlock) when none waits,
    /// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
    #[inline]
    pub fn recv(&mut self, socket: SocketId) -> Result<Datagram<B>, SocketError> {
        let s = self.socket_mut(socket)?;
        let Some(datagram) = s.queue.pop_front() else {
            s.notified = false;
            return Err(SocketError::WouldBlock);
        };
        s.budget.give_back(datagram.charge());
        if s.queue.is_empty() {
            s.notified = false;
        }
        Ok(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, BufferPool};
    use tpa::buf::PoolBuf;
    use tpa::wire::MacAddr;

    fn iface() -> Interface {
        Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv4("198.51.100.1/24".parse().unwrap())
            .with_ipv6("2001:db8::1/64".parse().unwrap())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn datagram(len: usize) -> Datagram<PoolBuf> {
        let buf = frame(&vec![0u8; 42 + len]);
        Datagram::new(buf, 42, len, addr("192.0.2.2:9"), addr("192.0.2.1:7"))
    }

    #[test]
    fn exact_binds_win_over_the_wildcard_of_their_family_only() {
        let iface = iface();
        let mut t = UdpSockets::<PoolBuf>::default();
        let any4 = t.bind(addr("0.0.0.0:53"), &iface).unwrap();
        let exact = t.bind(addr("198.51.100.1:54"), &iface).unwrap();
        let any6 = t.bind(addr("[::]:53"), &iface).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.lookup(ip("192.0.2.1"), 53), Some(any4));
        assert_eq!(t.lookup(ip("198.51.100.1"), 54), Some(exact));
        assert_eq!(t.lookup(ip("192.0.2.1"), 54), None);
        assert_eq!(t.lookup(ip("2001:db8::1"), 53), Some(any6));
        assert_eq!(t.lookup(ip("2001:db8::1"), 54), None);
        assert_eq!(t.local_addr(exact), Ok(addr("198.51.100.1:54")));
        assert_eq!(t.len(), 3);
        t.close(any4).unwrap();
        let open: Vec<_> = t.iter().map(|(id, local, _)| (id, local)).collect();
        assert_eq!(
            open,
            [(exact, addr("198.51.100.1:54")), (any6, addr("[::]:53"))]
        );
        let counters = t.counters(exact).unwrap().to_string();
        assert_eq!(
            counters,
            "received 0 dropped-full 0 sent 0 send-errors 0 icmp-errors 0"
        );
    }

    #[test]
    fn conflicts_are_address_in_use_and_foreign_addresses_not_available() {
        let iface = iface();
        let mut t = UdpSockets::<PoolBuf>::default();
        let exact = t.bind(addr("192.0.2.1:7"), &iface).unwrap();
        assert_eq!(
            t.bind(addr("192.0.2.1:7"), &iface),
            Err(SocketError::AddressInUse)
        );
        assert_eq!(
            t.bind(addr("0.0.0.0:7"), &iface),
            Err(SocketError::AddressInUse)
        );
        // Another address, or the other family, is free.
        t.bind(addr("198.51.100.1:7"), &iface).unwrap();
        t.bind(addr("[::]:7"), &iface).unwrap();
        assert_eq!(
            t.bind(addr("[2001:db8::1]:7"), &iface),
            Err(SocketError::AddressInUse)
        );
        assert_eq!(
            t.bind(addr("192.0.2.77:7"), &iface),
            Err(SocketError::AddressNotAvailable)
        );
        assert_eq!(
            t.bind(addr("[2001:db8::9]:7"), &iface),
            Err(SocketError::AddressNotAvailable)
        );
        t.close(exact).unwrap();
        assert_eq!(
            t.bind(addr("0.0.0.0:7"), &iface),
            Err(SocketError::AddressInUse)
        );
    }

    #[test]
    fn stale_handles_fail_after_close_even_when_the_slot_is_reused() {
        let iface = iface();
        let mut t = UdpSockets::<PoolBuf>::default();
        let old = t.bind(addr("0.0.0.0:1"), &iface).unwrap();
        t.close(old).unwrap();
        let new = t.bind(addr("0.0.0.0:2"), &iface).unwrap();
        assert_eq!(new.index, old.index, "the slot is reused");
        assert_ne!(new.generation, old.generation);
        assert_eq!(t.recv(old).unwrap_err(), SocketError::BadSocket);
        assert_eq!(t.close(old), Err(SocketError::BadSocket));
        assert_eq!(t.local_addr(old), Err(SocketError::BadSocket));
        assert_eq!(t.recv(new).unwrap_err(), SocketError::WouldBlock);
        let tcp = SocketId::new(Transport::Tcp, new.index, new.generation);
        assert_eq!(t.recv(tcp).unwrap_err(), SocketError::BadSocket);
        let beyond = SocketId::new(Transport::Udp, 99, 0);
        assert_eq!(t.close(beyond), Err(SocketError::BadSocket));
    }

    #[test]
    fn port_zero_picks_free_ephemeral_ports() {
        let iface = iface();
        let mut t = UdpSockets::<PoolBuf>::new(UdpConfig {
            ephemeral_first: 65533,
            ..UdpConfig::default()
        });
        t.bind(addr("0.0.0.0:65534"), &iface).unwrap();
        let a = t.bind(addr("0.0.0.0:0"), &iface).unwrap();
        let b = t.bind(addr("0.0.0.0:0"), &iface).unwrap();
        assert_eq!(t.local_addr(a).unwrap().port(), 65533);
        assert_eq!(t.local_addr(b).unwrap().port(), 65535);
        assert_eq!(
            t.bind(addr("0.0.0.0:0"), &iface),
            Err(SocketError::NoBuffers)
        );
        // The other family has its own ports.
        let c = t.bind(addr("[::]:0"), &iface).unwrap();
        assert!(t.local_addr(c).unwrap().port() >= 65533);
    }

    #[test]
    fn the_table_is_bounded() {
        let iface = iface();
        let mut t = UdpSockets::<PoolBuf>::new(UdpConfig {
            capacity: 2,
            ..UdpConfig::default()
        });
        t.bind(addr("0.0.0.0:1"), &iface).unwrap();
        let b = t.bind(addr("0.0.0.0:2"), &iface).unwrap();
        assert_eq!(
            t.bind(addr("0.0.0.0:3"), &iface),
            Err(SocketError::NoBuffers)
        );
        t.close(b).unwrap();
        t.bind(addr("0.0.0.0:3"), &iface).unwrap();
    }

    #[test]
    fn the_queue_keeps_its_byte_limit_and_says_when_it_becomes_readable() {
        let iface = iface();
        let mut t = UdpSockets::<PoolBuf>::new(UdpConfig {
            receive_limit: 3 * 256 + 100,
            ..UdpConfig::default()
        });
        let s = t.bind(addr("0.0.0.0:7"), &iface).unwrap();
        assert_eq!(t.enqueue(s, datagram(10)), Queued::First);
        // Until told, the socket asks to be announced again.
        assert_eq!(t.enqueue(s, datagram(10)), Queued::First);
        t.notified(s);
        assert_eq!(t.enqueue(s, datagram(300)), Queued::Behind); // 342 bytes
        assert_eq!(t.enqueue(s, datagram(10)), Queued::Full);
        assert_eq!(t.queued(s), Ok((3, 256 + 256 + 342)));
        let c = t.counters(s).unwrap();
        assert_eq!((c.received, c.dropped_full), (3, 1));
        assert_eq!(t.recv(s).unwrap().len(), 10);
        assert_eq!(t.enqueue(s, datagram(10)), Queued::Behind);
        while t.recv(s).is_ok() {}
        assert_eq!(t.queued(s), Ok((0, 0)));
        assert_eq!(t.enqueue(s, datagram(1)), Queued::First);
        t.notified(s);
        assert_eq!(t.enqueue(s, datagram(1)), Queued::Behind);
        // Closing releases what was queued.
        t.close(s).unwrap();
        pool().assert_whole();
    }
}
