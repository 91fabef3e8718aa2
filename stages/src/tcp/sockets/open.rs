//! Opening: listening, active opens, passive opens from a listener's
//! SYN (a backlog entry or a SYN cookie), and TIME_WAIT reuse.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

use tpa::app::{SocketError, SocketId, Transport};
use tpa::buf::PacketBuf;

use tpa::wire::tcp::TcpFlags;

use super::{lookup, Conn, Entry, TcpSockets};
use crate::iface::Interface;
use crate::tcp::conn::{wscale_for, ConnParams, Connection, MIN_SND_MSS};
use crate::tcp::listen::Listener;
use crate::tcp::pmtu::mss_for_mtu;
use crate::tcp::segment::{OptionsOut, SegmentIn, SegmentOut};
use crate::tcp::seq::SeqNumber;
use crate::tcp::syncookie::{CookieError, CookieOptions, CookieSyn, SynCookieMode, SynCookies};
use crate::tcp::wire::FourTuple;

/// Why a listener's SYN made no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spawn {
    /// The listener's backlog is full.
    BacklogFull,
    /// The table is at `max_sockets`.
    TableFull,
    /// A valid cookie's ACK found the listener's accept queue full.
    AcceptQueueOverflow,
}

impl<B: PacketBuf> TcpSockets<B> {
    /// Opens a listener on `local` (an address of `iface` or the
    /// unspecified address of a family) with `backlog`, capped by the
    /// configuration's.
    ///
    /// # Errors
    ///
    /// `AddressNotAvailable` for an address not ours, `InvalidArgument` for
    /// port 0, `AddressInUse` when a listener has it, `NoBuffers` at
    /// `max_sockets`.
    pub fn listen(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        iface: &Interface,
    ) -> Result<SocketId, SocketError> {
        let ours = match local.ip() {
            IpAddr::V4(a) => a.is_unspecified() || iface.owns_ipv4(a),
            IpAddr::V6(a) => a.is_unspecified() || iface.owns_ipv6(a),
        };
        if !ours {
            return Err(SocketError::AddressNotAvailable);
        }
        if local.port() == 0 {
            return Err(SocketError::InvalidArgument);
        }
        if self.listeners.contains_key(&local) {
            return Err(SocketError::AddressInUse);
        }
        let backlog = backlog.min(self.cfg.backlog);
        let id = self.take_slot(Entry::Listener(Box::new(Listener::new(local, backlog))))?;
        self.listeners.insert(local, id.index);
        if let Some(host) = &self.shared_host {
            if let Err(e) = host.open_port(Transport::Tcp, local.port()) {
                tracing::warn!("listen tcp {local}: the port stays the kernel's: {e}");
                self.free_slot(id.index);
                return Err(SocketError::AddressNotAvailable);
            }
        }
        Ok(id)
    }

    /// Opens a connection from `local` (our address; port 0 for an
    /// ephemeral one landing on `queue`) to `remote`, with `mss` for the
    /// path, at `now_ns`. The SYN goes out at the output path's next
    /// turn.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for a remote of port 0, unspecified, a group
    /// address or of the other family; `AddressInUse` when the 4-tuple is
    /// taken; `AddressNotAvailable` when no ephemeral port is left;
    /// `NoBuffers` at `max_sockets`.
    pub fn connect(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        mss: u16,
        queue: u16,
        now_ns: u64,
    ) -> Result<SocketId, SocketError> {
        if remote.port() == 0
            || !crate::tcp::wire::unicast(remote.ip())
            || local.is_ipv4() != remote.is_ipv4()
        {
            return Err(SocketError::InvalidArgument);
        }
        if !self.make_room() {
            return Err(SocketError::NoBuffers);
        }
        // The picker's last candidate and its tuple's hash: the port
        // picked, hashed once.
        let mut last_hashed = None;
        let port = match local.port() {
            0 => {
                let ip = local.ip();
                let (conns, slots) = (&self.conns, &self.slots);
                let (listeners, tuple_hash) = (&self.listeners, &self.tuple_hash);
                self.ports.pick(&self.steering, queue, ip, remote, |port| {
                    let l = SocketAddr::new(ip, port);
                    let candidate = FourTuple { local: l, remote };
                    let hash = tuple_hash.hash_one(candidate);
                    last_hashed = Some((port, hash));
                    lookup(conns, slots, hash, &candidate).is_none() && !listeners.contains_key(&l)
                })?
            }
            p => p,
        };
        let tuple = FourTuple {
            local: SocketAddr::new(local.ip(), port),
            remote,
        };
        let hash = match last_hashed {
            Some((p, hash)) if p == port => hash,
            _ => self.tuple_hash.hash_one(tuple),
        };
        // A picked port passed the same test in the picker: only the
        // application's own port is looked up here.
        debug_assert!(local.port() != 0 || self.find_hashed(hash, &tuple).is_none());
        if local.port() != 0 && self.find_hashed(hash, &tuple).is_some() {
            return Err(SocketError::AddressInUse);
        }
        let params = self.params(&tuple, mss, None, now_ns);
        let conn = Connection::connect(&self.cfg, params, now_ns);
        let mut entry = self.boxed_conn(conn, tuple, hash, None, true);
        self.cap_by_path_mtu(&mut entry.conn, &tuple, now_ns);
        let id = self.take_slot(Entry::Conn(entry))?;
        self.insert_conn(id.index);
        self.attach_trace(id, now_ns);
        self.counters.active_opens += 1;
        self.mark(id.index);
        Ok(id)
    }

    /// The parameters of a new connection on `tuple`: the keyed ISN
    /// (RFC 6528), at least `iss_floor` when a TIME_WAIT connection of
    /// the 4-tuple gave way to it; the timestamp offset a keyed hash of
    /// the 4-tuple (RFC 7323 §5.4), so one 4-tuple's incarnations send
    /// rising TSvals, which a peer holding the old one in TIME_WAIT
    /// checks before it lets a new SYN in (RFC 6191).
    pub(super) fn params(
        &mut self,
        tuple: &FourTuple,
        mss: u16,
        iss_floor: Option<SeqNumber>,
        now_ns: u64,
    ) -> ConnParams {
        let clock_ns = now_ns.wrapping_add(self.boot_offset_ns);
        // One keyed hash gives both (IsnGenerator::isn_and_ts_offset).
        let (mut iss, ts_offset) = self
            .isn
            .isn_and_ts_offset(clock_ns, tuple.local, tuple.remote);
        if let Some(floor) = iss_floor {
            if iss.lt(floor) {
                iss = floor;
            }
        }
        ConnParams {
            mss,
            iss,
            ts_offset: self.boot_ts(ts_offset),
        }
    }

    /// Caps `conn`'s MSS by the path MTU learnt for its peer, if any.
    pub(super) fn cap_by_path_mtu(&self, conn: &mut Connection<B>, tuple: &FourTuple, now_ns: u64) {
        let remote = tuple.remote.ip();
        if let Some(mtu) = self.path_mtus.get(remote, now_ns) {
            conn.cap_path_mss(mss_for_mtu(mtu, remote.is_ipv6()));
        }
    }

    /// The path MTU learnt for `dst` (from ICMP, not yet expired), which
    /// new connections to it start with.
    pub fn path_mtu(&self, dst: IpAddr, now_ns: u64) -> Option<u16> {
        self.path_mtus.get(dst, now_ns)
    }

    /// Frees the connection in slot `index` for `syn` if it is in
    /// TIME_WAIT, closed by the application, and RFC 6191 lets `syn` open
    /// a new incarnation of its 4-tuple
    /// ([`Connection::time_wait_accepts_syn`]); counted in
    /// `time_wait_reuses`. Returns the least ISS for the new incarnation.
    /// A TIME_WAIT connection the application still holds stays (its
    /// handle would go stale under it): the SYN is handled as RFC 9293
    /// says.
    pub(crate) fn reuse_time_wait(&mut self, index: u32, syn: &SegmentIn<B>) -> Option<SeqNumber> {
        let c = self.conn_entry(index)?;
        if !c.time_wait || !c.app_closed || !c.conn.time_wait_accepts_syn(syn) {
            return None;
        }
        let floor = c.conn.next_incarnation_iss();
        // Its place in the TIME_WAIT queue and the timer queue goes stale
        // with the slot's generation, as an eviction's does.
        self.free_slot(index);
        self.counters.time_wait_reuses += 1;
        Some(floor)
    }

    /// A connection for the SYN `syn` on `tuple`, spawned by the listener
    /// in slot `listener`, if its backlog and the table have room; its ISS
    /// at least `iss_floor` (a TIME_WAIT connection of the 4-tuple gave
    /// way to it).
    ///
    /// # Errors
    ///
    /// [`Spawn::BacklogFull`] or [`Spawn::TableFull`], counted.
    pub(crate) fn spawn(
        &mut self,
        listener: u32,
        tuple: FourTuple,
        syn: &SegmentIn<B>,
        mss: u16,
        iss_floor: Option<SeqNumber>,
        now_ns: u64,
    ) -> Result<SocketId, Spawn> {
        if !self.make_room() {
            self.counters.table_full_drops += 1;
            return Err(Spawn::TableFull);
        }
        let listener_id = self.id(listener);
        let admitted = self.listener_entry(listener).is_some_and(|l| l.admit());
        if !admitted {
            self.counters.backlog_drops += 1;
            return Err(Spawn::BacklogFull);
        }
        let params = self.params(&tuple, mss, iss_floor, now_ns);
        let conn = Connection::accept(&self.cfg, params, syn, now_ns);
        let hash = self.tuple_hash.hash_one(tuple);
        let entry = self.boxed_conn(conn, tuple, hash, Some(listener_id), false);
        self.insert_passive(entry, listener, listener_id, now_ns)
    }

    /// Puts `entry`, a connection of the listener in slot `listener`
    /// (`listener_id`), which admitted it, in a slot of its own: its MSS
    /// capped by the path's MTU, marked, counted as a passive open.
    ///
    /// # Errors
    ///
    /// [`Spawn::TableFull`], counted, the listener's place given back.
    pub(super) fn insert_passive(
        &mut self,
        mut entry: Box<Conn<B>>,
        listener: u32,
        listener_id: SocketId,
        now_ns: u64,
    ) -> Result<SocketId, Spawn> {
        let tuple = entry.tuple;
        self.cap_by_path_mtu(&mut entry.conn, &tuple, now_ns);
        let Ok(id) = self.take_slot(Entry::Conn(entry)) else {
            // The callers made room first; give the place back all the same.
            if let Some(l) = self.listener_entry(listener) {
                l.release(listener_id);
            }
            self.counters.table_full_drops += 1;
            return Err(Spawn::TableFull);
        };
        self.insert_conn(id.index);
        self.attach_trace(id, now_ns);
        self.counters.passive_opens += 1;
        self.mark(id.index);
        Ok(id)
    }

    /// Whether a SYN to the listener in slot `listener` is answered with
    /// a cookie: always, or when its backlog is full, as the
    /// configuration says; never while connections waiting to be
    /// accepted fill the backlog (the cookie's ACK would find no room:
    /// the SYN is dropped as `backlog-full`, as Linux drops it on a full
    /// accept queue).
    pub(crate) fn wants_cookie(&mut self, listener: u32) -> bool {
        let mode = self.cfg.syn_cookies;
        let Some(l) = self.listener_entry(listener) else {
            return false;
        };
        match mode {
            _ if l.accept_queue_full() => false,
            SynCookieMode::Off => false,
            SynCookieMode::Always => true,
            SynCookieMode::OnOverflow => l.is_full(),
        }
    }

    /// The SYN-ACK answering `syn` on `tuple` with a cookie, for the
    /// listener in slot `listener`, announcing `mss`. Nothing is kept but
    /// the listener's note that cookies are out. It agrees on what
    /// [`Connection::accept`] would, except that without timestamps it
    /// offers neither window scaling nor SACK (the cookie has nowhere to
    /// carry the peer's side of them).
    pub(crate) fn cookie_syn_ack(
        &mut self,
        listener: u32,
        tuple: &FourTuple,
        syn: &SegmentIn<B>,
        mss: u16,
        now_ns: u64,
    ) -> SegmentOut<B> {
        let cfg = &self.cfg;
        let peer = &syn.options;
        let timestamps = cfg.timestamps && peer.timestamps.is_some();
        let opts = CookieOptions {
            timestamps,
            window_scale: peer
                .window_scale
                .filter(|_| timestamps && cfg.window_scale)
                .map(|s| s.min(14)),
            sack: timestamps && cfg.sack && peer.sack_permitted,
        };
        // RFC 9293 §3.7.1: 536 when the SYN names none.
        let peer_mss = peer.mss.unwrap_or(536);
        let iss = self.cookies.make(now_ns, tuple, syn.seq, peer_mss, opts);
        let ts_offset = self.ts_offset(tuple);
        let ts = peer.timestamps.filter(|_| timestamps).map(|(tsval, _)| {
            // The connection's clock (1 ms ticks plus its offset), as
            // `Connection` keeps it once made from the cookie.
            let ts_now = ((now_ns / 1_000_000) as u32).wrapping_add(ts_offset);
            (SynCookies::tsval(ts_now, opts), tsval)
        });
        let options = OptionsOut {
            mss: Some(mss.max(MIN_SND_MSS)),
            window_scale: opts
                .window_scale
                .map(|_| wscale_for(cfg.receive_queue_bytes)),
            sack_permitted: opts.sack,
            timestamps: ts,
            sack: None,
        };
        let window = cfg.receive_queue_bytes.min(usize::from(u16::MAX)) as u16;
        if let Some(l) = self.listener_entry(listener) {
            l.cookie_sent(SynCookies::counter(now_ns));
        }
        SegmentOut {
            seq: iss,
            ack: syn.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window,
            options,
            payload: None,
        }
    }

    /// Whether an ACK to the listener in slot `listener` is checked as a
    /// cookie: cookies are on and the listener sent one recently enough
    /// to be answered (otherwise it gets the reset any stray ACK does).
    pub(crate) fn checks_cookies(&mut self, listener: u32, now_ns: u64) -> bool {
        let counter = SynCookies::counter(now_ns);
        self.cfg.syn_cookies != SynCookieMode::Off
            && self
                .listener_entry(listener)
                .is_some_and(|l| l.cookies_recent(counter))
    }

    /// Checks the ACK `seg` on `tuple` as the answer to one of our
    /// cookies; counted.
    ///
    /// # Errors
    ///
    /// Why it is not one ([`CookieError`]).
    pub(crate) fn check_cookie(
        &mut self,
        tuple: &FourTuple,
        seg: &SegmentIn<B>,
        now_ns: u64,
    ) -> Result<CookieSyn, CookieError> {
        let options = match seg.options.timestamps.filter(|_| self.cfg.timestamps) {
            // The SYN-ACK's TSval, echoed: its low bits are the options.
            Some((_, tsecr)) => CookieOptions::from_bits(tsecr as u8),
            None => Some(CookieOptions::default()),
        };
        let checked = options.ok_or(CookieError::Invalid).and_then(|o| {
            self.cookies
                .check(now_ns, tuple, seg.seq - 1, seg.ack - 1, o)
        });
        match checked {
            Ok(_) => self.counters.syn_cookies_validated += 1,
            Err(e) => {
                self.counters.syn_cookies_failed += 1;
                self.counters.syn_cookies_expired += u64::from(e == CookieError::Expired);
            }
        }
        checked
    }

    /// The connection rebuilt from a valid cookie's ACK `ack` on `tuple`
    /// ([`Connection::from_cookie`]), for the listener in slot
    /// `listener`: ESTABLISHED, it joins the accept queue when its events
    /// are raised. Returns its slot.
    ///
    /// # Errors
    ///
    /// [`Spawn::AcceptQueueOverflow`] or [`Spawn::TableFull`], counted.
    pub(crate) fn spawn_from_cookie(
        &mut self,
        listener: u32,
        tuple: FourTuple,
        cookie: &CookieSyn,
        ack: SegmentIn<B>,
        mss: u16,
        now_ns: u64,
    ) -> Result<u32, Spawn> {
        if !self.make_room() {
            self.counters.table_full_drops += 1;
            return Err(Spawn::TableFull);
        }
        let listener_id = self.id(listener);
        let admitted = self
            .listener_entry(listener)
            .is_some_and(|l| l.admit_established());
        if !admitted {
            self.counters.accept_queue_drops += 1;
            return Err(Spawn::AcceptQueueOverflow);
        }
        let params = ConnParams {
            mss,
            iss: cookie.iss,
            ts_offset: self.ts_offset(&tuple),
        };
        let conn = Connection::from_cookie(&self.cfg, params, cookie, ack, now_ns);
        let hash = self.tuple_hash.hash_one(tuple);
        let entry = self.boxed_conn(conn, tuple, hash, Some(listener_id), false);
        let id = self.insert_passive(entry, listener, listener_id, now_ns)?;
        Ok(id.index)
    }
}
