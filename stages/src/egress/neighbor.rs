//! The neighbor step: a frame for an on-link neighbor gets its Ethernet
//! destination from the cache, or waits in the neighbor's hold queue while
//! the step solicits it; what the cache asks for later (retries, probes,
//! releases, drops with an error for the sender) is carried out here for
//! the ARP and NDP stages, which learn into the caches and run their
//! timers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tpa::app::{Event, EventKind, Events, SocketError};
use tpa::buf::PacketBuf;
use tpa::port::SharedHost;
use tpa::stage::{Cx, PortCx};
use tpa::state::{Part, Parts, Polled};
use tpa::wire::MacAddr;

use super::ethernet::set_destination;
use super::route::NextHop;
use super::solicit::{
    arp_request, gratuitous_arp, neighbor_solicitation, unsolicited_advertisement,
};
use super::state::{Egress, EgressCounters, Held};
use super::Sent;
use crate::iface::Interface;
use crate::neighbor::{
    Action, Heard, NeighborAddr, NeighborCache, NeighborState, ResolveError, Resolved,
};

/// What differs between ARP and NDP for the neighbor step: the
/// solicitation frame and its counter.
pub(super) trait Family: NeighborAddr + Into<IpAddr> {
    /// `ip` if it is of this family.
    fn of(ip: IpAddr) -> Option<Self>;

    /// A solicitation for `target` (see [`Action::Solicit`]).
    fn solicitation<B: PacketBuf>(
        port: &mut PortCx<'_, B>,
        iface: &Interface,
        target: Self,
        unicast: Option<MacAddr>,
    ) -> Option<B>;

    /// Counts one solicitation sent.
    fn count_solicitation(counters: &mut EgressCounters);
}

impl Family for Ipv4Addr {
    fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    fn solicitation<B: PacketBuf>(
        port: &mut PortCx<'_, B>,
        iface: &Interface,
        target: Self,
        unicast: Option<MacAddr>,
    ) -> Option<B> {
        arp_request(port, iface, target, unicast)
    }

    fn count_solicitation(counters: &mut EgressCounters) {
        counters.arp_requests += 1;
    }
}

impl Family for Ipv6Addr {
    fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }

    fn solicitation<B: PacketBuf>(
        port: &mut PortCx<'_, B>,
        iface: &Interface,
        target: Self,
        unicast: Option<MacAddr>,
    ) -> Option<B> {
        neighbor_solicitation(port, iface, target, unicast)
    }

    fn count_solicitation(counters: &mut EgressCounters) {
        counters.solicitations += 1;
    }
}

/// The socket error of a held packet dropped for `error`.
fn socket_error(error: ResolveError) -> SocketError {
    match error {
        ResolveError::Unreachable => SocketError::HostUnreachable,
        ResolveError::QueueFull | ResolveError::CacheFull => SocketError::NoBuffers,
    }
}

/// Carries out what a cache asked for: sends a solicitation, sends a
/// released frame, or drops a held one and tells its owner through
/// `events` (when there is an owner and an `Events` part to tell it in).
/// Returns the frames sent.
fn act<A: Family, B: PacketBuf>(
    iface: &Interface,
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    host: Option<&dyn SharedHost>,
    events: Option<&mut Events>,
    action: Action<A, Held<B>>,
) {
    match action {
        // Beside the kernel, ARP and ND are the kernel's: it resolves, and
        // tpa reads its answer from the kernel's table.
        Action::Solicit { target, .. } if host.is_some() => {
            let host = host.expect("checked");
            match host.resolve(target.into()) {
                Ok(()) => A::count_solicitation(counters),
                Err(e) => tracing::warn!("the kernel cannot resolve {}: {e}", target.into()),
            }
        }
        Action::Solicit { target, unicast } => {
            match A::solicitation(port, iface, target, unicast) {
                Some(frame) => {
                    A::count_solicitation(counters);
                    port.transmit(frame);
                }
                None => counters.alloc_failed += 1,
            }
        }
        Action::Send {
            packet: Held { mut frame, .. },
            mac,
        } => {
            if set_destination(frame.data_mut(), mac) {
                counters.released += 1;
                port.transmit(frame);
            }
        }
        Action::Drop {
            packet: Held { frame, owner },
            error,
            ..
        } => {
            drop(frame);
            match error {
                ResolveError::Unreachable => counters.unreachable += 1,
                ResolveError::QueueFull | ResolveError::CacheFull => counters.hold_full += 1,
            }
            if let (Some(socket), Some(events)) = (owner, events) {
                let kind = EventKind::Error(socket_error(error));
                if events.push(Event { socket, kind }) {
                    counters.owner_errors += 1;
                }
            }
        }
    }
}

/// Sends `held`'s frame (complete but for its Ethernet destination) to `hop`:
/// at once to a group or a known neighbor, else into the neighbor's hold
/// queue, soliciting it if it is new. A cache deadline this sets lowers
/// `wake_ns` (the part's wake time) to it.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_and_send<A: Family, B: PacketBuf>(
    cache: &mut NeighborCache<A, Held<B>>,
    iface: &Interface,
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    host: Option<&dyn SharedHost>,
    wake_ns: &mut u64,
    hop: NextHop<A>,
    held: Held<B>,
) -> Result<Sent, SocketError> {
    let Held { frame, owner } = held;
    let (mac, frame) = match hop {
        NextHop::Group(mac) => (mac, frame),
        NextHop::Neighbor(neighbor) => {
            let now = port.now_ns();
            match cache.lookup_quick(neighbor, now) {
                Some(mac) => (mac, frame),
                None => {
                    // Every other case may set a deadline.
                    let resolved = resolve(
                        cache,
                        iface,
                        counters,
                        port,
                        host,
                        neighbor,
                        now,
                        Held { frame, owner },
                    );
                    lower_wake(wake_ns, cache);
                    match resolved {
                        Ok(to_send) => to_send,
                        Err(done) => return done,
                    }
                }
            }
        }
    };
    transmit_to(counters, port, frame, mac)
}

/// [`resolve_and_send`]'s neighbor past `lookup`'s common case: its
/// address (from the cache or, beside the kernel, the kernel's table) and
/// the frame to send to it, or the frame held (or refused) until it is
/// resolved: what `resolve_and_send` then returns.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn resolve<A: Family, B: PacketBuf>(
    cache: &mut NeighborCache<A, Held<B>>,
    iface: &Interface,
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    host: Option<&dyn SharedHost>,
    neighbor: A,
    now: u64,
    held: Held<B>,
) -> Result<(MacAddr, B), Result<Sent, SocketError>> {
    let known = cache
        .lookup(neighbor, now)
        .or_else(|| from_kernel(cache, iface, counters, port, host?, neighbor));
    if let Some(mac) = known {
        return Ok((mac, held.frame));
    }
    match cache.hold(neighbor, held, now, |a| {
        act(iface, counters, port, host, None, a)
    }) {
        Resolved::Ready(mac, held) => Ok((mac, held.frame)),
        Resolved::Held => {
            counters.held += 1;
            Err(Ok(Sent::Held))
        }
        Resolved::Refused(held, _) => {
            drop(held);
            counters.hold_full += 1;
            Err(Err(SocketError::NoBuffers))
        }
    }
}

/// `wake_ns` brought down to `cache`'s earliest deadline, if that is
/// sooner: after a call that may have set one.
#[inline]
fn lower_wake<A: Family, B: PacketBuf>(wake_ns: &mut u64, cache: &NeighborCache<A, Held<B>>) {
    if let Some(at) = cache.next_deadline() {
        *wake_ns = (*wake_ns).min(at);
    }
}

/// The last step of every frame to a known link-layer destination: `mac`
/// written into `frame` (complete but for it), the frame queued on
/// `port` and counted (`sent`, or `tx_full` when the port takes nothing).
#[inline(always)]
pub(super) fn transmit_to<B: PacketBuf>(
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    mut frame: B,
    mac: MacAddr,
) -> Result<Sent, SocketError> {
    set_destination(frame.data_mut(), mac);
    transmit_addressed(counters, port, frame)
}

/// [`transmit_to`] for a frame whose destination is written already.
#[inline(always)]
pub(super) fn transmit_addressed<B: PacketBuf>(
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    frame: B,
) -> Result<Sent, SocketError> {
    match port.try_transmit(frame) {
        Ok(()) => {
            counters.sent += 1;
            Ok(Sent::Queued)
        }
        Err(frame) => {
            drop(frame);
            counters.tx_full += 1;
            Err(SocketError::NoBuffers)
        }
    }
}

/// Beside the kernel: `neighbor`'s address from the kernel's table,
/// learnt into `cache` (STALE, as if it had asked us), if the kernel has
/// resolved it.
#[inline(never)]
fn from_kernel<A: Family, B: PacketBuf>(
    cache: &mut NeighborCache<A, Held<B>>,
    iface: &Interface,
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    host: &dyn SharedHost,
    neighbor: A,
) -> Option<MacAddr> {
    let ip: IpAddr = neighbor.into();
    let mac = match host.neighbors() {
        Ok(all) => all.into_iter().find(|&(a, _)| a == ip)?.1,
        Err(e) => {
            tracing::warn!("the kernel's neighbours cannot be read: {e}");
            return None;
        }
    };
    let now = port.now_ns();
    cache.learn(neighbor, Some(mac), Heard::Solicitation, now, |a| {
        act(iface, counters, port, Some(host), None, a)
    });
    Some(mac)
}

/// Beside the kernel: learns every neighbour of `A`'s family the kernel
/// has resolved into `cache`, as solicited answers (entries tpa waits for
/// are resolved and their frames leave; others are confirmed).
fn learn_from_kernel<A: Family, B: PacketBuf>(
    cache: &mut NeighborCache<A, Held<B>>,
    iface: &Interface,
    counters: &mut EgressCounters,
    port: &mut PortCx<'_, B>,
    host: &dyn SharedHost,
) {
    let all = match host.neighbors() {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("the kernel's neighbours cannot be read: {e}");
            return;
        }
    };
    let now = port.now_ns();
    let heard = Heard::Advertisement {
        solicited: true,
        override_entry: true,
    };
    for (ip, mac) in all {
        if let Some(a) = A::of(ip) {
            cache.learn(a, Some(mac), heard, now, |x| {
                act(iface, counters, port, Some(host), None, x)
            });
        }
    }
}

impl<B: PacketBuf> Egress<B> {
    /// Records that IPv4 neighbor `ip` was heard at `mac` (see
    /// [`NeighborCache::learn`]); frames held for it leave through `port`.
    /// Returns its state afterwards.
    pub fn learn_v4(
        &mut self,
        ip: Ipv4Addr,
        mac: Option<MacAddr>,
        heard: Heard,
        port: &mut PortCx<'_, B>,
    ) -> Option<NeighborState> {
        let now = port.now_ns();
        let (iface, counters, host) =
            (&self.iface, &mut self.counters, self.shared_host.as_deref());
        let state = self.v4.learn(ip, mac, heard, now, |a| {
            act(iface, counters, port, host, None, a)
        });
        lower_wake(&mut self.wake_ns, &self.v4);
        state
    }

    /// Records that IPv6 neighbor `ip` was heard at `mac`, as
    /// [`learn_v4`](Self::learn_v4) does.
    pub fn learn_v6(
        &mut self,
        ip: Ipv6Addr,
        mac: Option<MacAddr>,
        heard: Heard,
        port: &mut PortCx<'_, B>,
    ) -> Option<NeighborState> {
        let now = port.now_ns();
        let (iface, counters, host) =
            (&self.iface, &mut self.counters, self.shared_host.as_deref());
        let state = self.v6.learn(ip, mac, heard, now, |a| {
            act(iface, counters, port, host, None, a)
        });
        lower_wake(&mut self.wake_ns, &self.v6);
        state
    }

    /// Runs the IPv4 cache's due timers (see [`NeighborCache::poll`]):
    /// ARP requests repeated and probes sent through `port`; frames of a
    /// neighbor that never answered dropped, each owner told EHOSTUNREACH
    /// in `events`. Returns how many actions that was.
    #[inline]
    pub fn fire_timers_v4(&mut self, port: &mut PortCx<'_, B>, events: &mut Events) -> usize {
        // The check inline, the work out of line: nothing is due on
        // nearly every loop iteration.
        if self.v4.next_deadline().is_none_or(|at| at > port.now_ns()) {
            return 0;
        }
        self.run_timers_v4(port, events)
    }

    #[inline(never)]
    fn run_timers_v4(&mut self, port: &mut PortCx<'_, B>, events: &mut Events) -> usize {
        let now = port.now_ns();
        let (iface, counters, host) =
            (&self.iface, &mut self.counters, self.shared_host.as_deref());
        if let Some(host) = host {
            learn_from_kernel(&mut self.v4, iface, counters, port, host);
        }
        let mut fired = 0;
        self.v4.poll(now, |a| {
            fired += 1;
            act(iface, counters, port, host, Some(&mut *events), a)
        });
        lower_wake(&mut self.wake_ns, &self.v4);
        fired
    }

    /// Runs the IPv6 cache's due timers, as
    /// [`fire_timers_v4`](Self::fire_timers_v4) does.
    #[inline]
    pub fn fire_timers_v6(&mut self, port: &mut PortCx<'_, B>, events: &mut Events) -> usize {
        // The check inline, the work out of line: nothing is due on
        // nearly every loop iteration.
        if self.v6.next_deadline().is_none_or(|at| at > port.now_ns()) {
            return 0;
        }
        self.run_timers_v6(port, events)
    }

    #[inline(never)]
    fn run_timers_v6(&mut self, port: &mut PortCx<'_, B>, events: &mut Events) -> usize {
        let now = port.now_ns();
        let (iface, counters, host) =
            (&self.iface, &mut self.counters, self.shared_host.as_deref());
        if let Some(host) = host {
            learn_from_kernel(&mut self.v6, iface, counters, port, host);
        }
        let mut fired = 0;
        self.v6.poll(now, |a| {
            fired += 1;
            act(iface, counters, port, host, Some(&mut *events), a)
        });
        lower_wake(&mut self.wake_ns, &self.v6);
        fired
    }

    /// Runs both caches' due timers ([`fire_timers_v4`](Self::fire_timers_v4)
    /// and [`fire_timers_v6`](Self::fire_timers_v6)); returns how many
    /// actions that was.
    ///
    /// Inline in every loop iteration, one compare: nothing is due before
    /// the part's wake time (at most the earliest deadline).
    #[inline]
    pub fn fire_timers(&mut self, port: &mut PortCx<'_, B>, events: &mut Events) -> usize {
        self.check_wake();
        if self.wake_ns > port.now_ns() {
            return 0;
        }
        self.run_timers(port, events)
    }

    #[inline(never)]
    fn run_timers(&mut self, port: &mut PortCx<'_, B>, events: &mut Events) -> usize {
        let fired = self.fire_timers_v4(port, events) + self.fire_timers_v6(port, events);
        self.reset_wake();
        fired
    }

    /// Sends the announcements of the announce policy
    /// ([`announcing`](Self::announcing)) not sent yet: a gratuitous ARP for
    /// each of our IPv4 addresses and an unsolicited neighbor advertisement
    /// for each IPv6 one. Returns how many were sent.
    ///
    /// Inline in every loop iteration, one test: the wake time is 0
    /// while an announcement is owed. The sending, once per policy
    /// change, is out of line.
    #[inline]
    pub fn announce(&mut self, port: &mut PortCx<'_, B>) -> usize {
        self.check_wake();
        if self.wake_ns != 0 {
            return 0;
        }
        self.send_announcements(port)
    }

    #[cold]
    #[inline(never)]
    fn send_announcements(&mut self, port: &mut PortCx<'_, B>) -> usize {
        let mut sent = 0;
        if std::mem::take(&mut self.announce_v4) {
            let addrs = self.iface.ipv4.iter().map(|c| c.addr);
            sent += announce_each(
                port,
                &mut self.counters,
                self.iface.mac,
                addrs,
                gratuitous_arp,
            );
        }
        if std::mem::take(&mut self.announce_v6) {
            let addrs = self.iface.ipv6.iter().map(|c| c.addr);
            sent += announce_each(
                port,
                &mut self.counters,
                self.iface.mac,
                addrs,
                unsolicited_advertisement,
            );
        }
        self.reset_wake();
        sent
    }
}

/// The neighbor caches' work once per loop iteration, run by the state
/// (the part's field marked `#[polled]`), whatever the number of stages
/// that share the part (the [`ArpResponder`](crate::arp::ArpResponder) and
/// the [`NdpResponder`](crate::ndp::NdpResponder) both learn into it, and
/// require the mark): the announcements of the announce policy, then both
/// caches' due timers and their earliest deadline. In an iteration with
/// nothing due, each is one test of the part's wake time.
impl<B, S> Polled<B, S> for Egress<B>
where
    B: PacketBuf,
    S: Part<Egress<B>> + Parts<(Egress<B>, Events)>,
{
    #[inline]
    fn poll(cx: &mut Cx<'_, B, S>) {
        let (state, port) = cx.split();
        Part::<Egress<B>>::part_mut(state).announce(port);
    }

    #[inline]
    fn fire_timers(cx: &mut Cx<'_, B, S>) -> usize {
        let ((egress, events), port) = cx.parts::<(Egress<B>, Events)>();
        egress.fire_timers(port, events)
    }

    #[inline]
    fn next_deadline(state: &S) -> Option<u64> {
        Part::<Egress<B>>::part(state).next_deadline()
    }
}

/// Builds with `build` and sends one announcement per address of `addrs`;
/// counts what was sent and what found no buffer. Returns how many were sent.
fn announce_each<B: PacketBuf, A>(
    port: &mut PortCx<'_, B>,
    counters: &mut EgressCounters,
    mac: MacAddr,
    addrs: impl Iterator<Item = A>,
    build: impl Fn(&mut PortCx<'_, B>, MacAddr, A) -> Option<B>,
) -> usize {
    let mut sent = 0;
    for addr in addrs {
        match build(port, mac, addr) {
            Some(frame) => {
                sent += 1;
                port.transmit(frame);
            }
            None => counters.alloc_failed += 1,
        }
    }
    counters.announcements += sent as u64;
    sent
}
