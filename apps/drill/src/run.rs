//! Plays one script against a [`Backend`]: the runner is the remote end.
//!
//! Time follows packetdrill: an absolute time counts from the script's
//! start, a relative one (`+t`) from when the previous event completed (an
//! outbound segment when it was seen, a call when it started). Inbound
//! segments and calls happen at their time; an outbound segment must be
//! sent within the tolerance of its time (or its range; `*` at any time).
//!
//! Numbers follow packetdrill too: the remote's sequence numbers are
//! absolute as the script writes them (its ISN is in its SYN); the stack's
//! are relative to its ISN, learned from its first SYN or SYN-ACK. Inbound
//! ACKs and SACK blocks are shifted by that ISN; outbound segments are
//! shown and compared with their sequence numbers relative to it. TS
//! values the stack sends are remembered against the script's: an inbound
//! TS ecr becomes the live value the script's value stood for.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::backend::{
    Backend, BackendError, CallResult, CallStatus, Family, IpVersion, Outbound, Setup, ShutdownHow,
    SockOpt, Syscall,
};
use crate::command::sysctls;
use crate::matcher::{differences, spec_text, Mode};
use crate::script::ast::{
    Action, Direction, Event, EventTime, Expr, PacketSpec, Script, SyscallSpec, TcpOption,
};
use crate::segment::{self, Addrs, Parsed, Segment};
use crate::symbols;

/// packetdrill's default tolerance for event times.
pub const DEFAULT_TOLERANCE_US: u64 = 4_000;
/// The port `bind(..., ...)` and `connect(..., ...)` fill in.
pub const SCRIPT_PORT: u16 = 8080;
/// The remote's port for connections the script opens to a listener.
pub const REMOTE_PORT: u16 = 40_000;
/// The longest read or write a script may ask for (bytes).
const MAX_IO_LEN: i64 = 64 << 20;
/// How long a `*` outbound segment is waited for.
const ANY_TIME_LIMIT_US: u64 = 600_000_000;

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every event happened as written.
    Pass,
    /// An event did not.
    Fail(Failure),
    /// The script uses something the runner or the backend does not
    /// have: `construct` names it.
    Unsupported {
        /// The line.
        line: usize,
        /// What is not supported.
        construct: String,
    },
    /// The script does not parse, or the backend broke.
    Error(String),
}

/// Where and how a script failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The line of the event.
    pub line: usize,
    /// What went wrong.
    pub message: String,
    /// The expected segment or result, as the script writes it.
    pub expected: Option<String>,
    /// What happened, written the same way.
    pub actual: Option<String>,
}

/// How the runner runs scripts.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// How segments are compared.
    pub mode: Mode,
    /// The timing tolerance (µs) for every script, instead of the
    /// script's `--tolerance_usecs` or the default (packetdrill's
    /// `--tolerance_usecs` on its command line).
    pub tolerance_us: Option<u64>,
    /// A further tolerance, in percent of the time since the previous
    /// event (packetdrill's `--tolerance_percent`): a kernel's timers
    /// fire late by up to an eighth of their timeout (its timer wheel).
    pub tolerance_percent: u64,
}

/// An early end of the script.
enum Stop {
    Fail(Failure),
    Unsupported(usize, String),
    Error(String),
}

fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Fail(Failure {
        line,
        message: message.into(),
        expected: None,
        actual: None,
    }))
}

fn unsupported<T>(line: usize, what: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Unsupported(line, what.into()))
}

fn backend_err(line: usize) -> impl Fn(BackendError) -> Stop {
    move |e| match e {
        BackendError::Unsupported(s) => Stop::Unsupported(line, s),
        BackendError::Failed(s) => Stop::Error(format!("line {line}: {s}")),
    }
}

/// The setup the script's options ask for, and its tolerance.
///
/// # Errors
///
/// An option the runner does not know (named), or a bad value.
pub fn setup_of(script: &Script) -> Result<(Setup, u64, bool), (usize, String)> {
    let mut ip = IpVersion::V4;
    let mut tolerance = DEFAULT_TOLERANCE_US;
    let mut ecr_scaled = false;
    let mut local = None;
    let mut remote = None;
    let mut gateway = None;
    let mut mtu = 1500u16;
    for o in &script.options {
        let val = o.value.clone().unwrap_or_default();
        let bad = || (o.line, format!("--{}={val}", o.name));
        match o.name.as_str() {
            "ip_version" => {
                ip = match val.as_str() {
                    "ipv4" => IpVersion::V4,
                    "ipv6" => IpVersion::V6,
                    "ipv4-mapped-ipv6" => IpVersion::V4MappedV6,
                    _ => return Err(bad()),
                }
            }
            "tolerance_usecs" => tolerance = val.parse().map_err(|_| bad())?,
            "tcp_ts_ecr_scaled" => ecr_scaled = true,
            // TS val is never checked here, so its tick does not matter.
            "tcp_ts_tick_usecs" => {}
            "local_ip" => local = Some(val.parse::<IpAddr>().map_err(|_| bad())?),
            "remote_ip" => remote = Some(val.parse::<IpAddr>().map_err(|_| bad())?),
            "gateway_ip" => gateway = Some(val.parse::<IpAddr>().map_err(|_| bad())?),
            "mtu" => mtu = val.parse().map_err(|_| bad())?,
            "strict_segments" => {}
            _ => return Err((o.line, format!("option --{}", o.name))),
        }
    }
    let (l, r, g, prefix): (IpAddr, IpAddr, IpAddr, u8) = if ip == IpVersion::V6 {
        (
            "fd3d:fa7b:d17d::1".parse().expect("literal"),
            "fd3d:f58:7b67::1".parse().expect("literal"),
            "fd3d:fa7b:d17d:8888::1".parse().expect("literal"),
            48,
        )
    } else {
        (
            "192.168.0.1".parse().expect("literal"),
            "192.0.2.1".parse().expect("literal"),
            "192.168.0.2".parse().expect("literal"),
            16,
        )
    };
    Ok((
        Setup {
            ip,
            local_ip: local.map_or(l, |a| a.to_canonical()),
            remote_ip: remote.map_or(r, |a| a.to_canonical()),
            prefix_len: prefix,
            gateway_ip: gateway.unwrap_or(g),
            mtu,
        },
        tolerance,
        ecr_scaled,
    ))
}

/// Plays `script` against a backend made by `make` for its setup (a
/// backend that cannot be made, such as the kernel's without root, is
/// the script's error).
pub fn run(script: &Script, make: &mut crate::MakeBackend<'_>, opts: RunOptions) -> Verdict {
    let (setup, tolerance, ecr_scaled) = match setup_of(script) {
        Ok(s) => s,
        Err((line, what)) => {
            return Verdict::Unsupported {
                line,
                construct: what,
            }
        }
    };
    let mut backend = match make(&setup) {
        Ok(b) => b,
        Err(e) => return Verdict::Error(e.to_string()),
    };
    let mut r = Runner {
        be: backend.as_mut(),
        setup,
        tolerance: opts.tolerance_us.unwrap_or(tolerance),
        tolerance_percent: opts.tolerance_percent,
        ecr_scaled,
        mode: opts.mode,
        last_us: 0,
        local_port: None,
        remote_port: REMOTE_PORT,
        flows: HashMap::new(),
        blocked: None,
        trace: std::env::var_os("TPA_DRILL_TRACE").is_some_and(|v| v == "1"),
        strict_segments: script.options.iter().any(|o| o.name == "strict_segments"),
        put_back: None,
    };
    match r.play(script) {
        Ok(()) => Verdict::Pass,
        Err(Stop::Fail(f)) => Verdict::Fail(f),
        Err(Stop::Unsupported(line, construct)) => Verdict::Unsupported { line, construct },
        Err(Stop::Error(e)) => Verdict::Error(e),
    }
}

/// What the runner learned of one connection (keyed by the remote port).
#[derive(Default)]
struct Flow {
    /// The stack's ISN, from its first SYN (0 when its first segment was
    /// not a SYN: a RST to a stray segment is written absolute).
    isn: Option<u32>,
    /// (script TS val, live TS val) of the segments the stack sent.
    ts_map: Vec<(u32, u32)>,
}

/// A call that blocked, and what it must return when.
struct Blocked {
    line: usize,
    spec: SyscallSpec,
    call: Syscall,
    /// The time it must return at (µs).
    end_us: u64,
    /// How far from it it may return (µs).
    tolerance: u64,
}

struct Runner<'a> {
    be: &'a mut dyn Backend,
    setup: Setup,
    /// The timing tolerance (µs).
    tolerance: u64,
    /// And in percent of the time since the previous event.
    tolerance_percent: u64,
    ecr_scaled: bool,
    mode: Mode,
    /// When the previous event completed (µs).
    last_us: u64,
    /// The stack's port (bound, or learned from its SYN).
    local_port: Option<u16>,
    /// The remote's port.
    remote_port: u16,
    /// Per connection, by the remote's port: the stack's ISN and its TS
    /// values.
    flows: HashMap<u16, Flow>,
    blocked: Option<Blocked>,
    /// Print every segment (`TPA_DRILL_TRACE=1`).
    trace: bool,
    /// `--strict_segments`: one `>` line, one segment.
    strict_segments: bool,
    /// A packet taken from the backend and not consumed.
    put_back: Option<Outbound>,
}

impl Runner<'_> {
    fn play(&mut self, script: &Script) -> Result<(), Stop> {
        if let Some(c) = &script.init_command {
            self.command(c.line, &c.text)?;
        }
        if let Some(first) = script.events.first() {
            if !matches!(first.time, EventTime::Absolute(0) | EventTime::Relative(0)) {
                return fail(first.line, "the first event should be at time 0");
            }
        }
        for ev in &script.events {
            self.event(ev)?;
            self.check_blocked()?;
        }
        self.finish_blocked()?;
        Ok(())
    }

    /// The start and end of `ev`'s time window (µs).
    fn window(&self, ev: &Event) -> (u64, u64) {
        match ev.time {
            EventTime::Absolute(t) => (t, t),
            EventTime::Relative(d) => {
                let t = self.last_us.saturating_add(d);
                (t, t)
            }
            EventTime::Any => (self.last_us, self.last_us.saturating_add(ANY_TIME_LIMIT_US)),
            EventTime::AbsoluteRange(a, b) => (a, b),
            EventTime::RelativeRange(a, b) => (
                self.last_us.saturating_add(a),
                self.last_us.saturating_add(b),
            ),
        }
    }

    fn event(&mut self, ev: &Event) -> Result<(), Stop> {
        let (start, end) = self.window(ev);
        let line = ev.line;
        match &ev.action {
            Action::Command(c) => {
                self.advance(line, start)?;
                self.command(line, &c.text)?;
                self.last_us = start;
            }
            Action::Code(_) => return unsupported(line, "%{ python code }% blocks"),
            Action::OtherPacket { protocol, .. } => {
                return unsupported(line, format!("{protocol} packets"))
            }
            Action::Packet(p) => {
                if let Some(info) = &p.ip_info {
                    return unsupported(line, format!("IP header fields [{info}]"));
                }
                if p.flags.ece || p.flags.cwr {
                    return unsupported(line, "ECN flags (E, W): tpa has no ECN");
                }
                if p.flags.urg || p.urg.is_some() {
                    return unsupported(line, "urgent data (U, urg)");
                }
                for o in p.options.iter().flatten() {
                    match o {
                        TcpOption::FastOpen(_) => return unsupported(line, "TCP Fast Open option"),
                        TcpOption::Md5(_) => return unsupported(line, "TCP MD5 option"),
                        _ => {}
                    }
                }
                match p.direction {
                    Direction::Inbound => {
                        self.advance(line, start)?;
                        self.inbound(line, p)?;
                        self.last_us = start;
                    }
                    Direction::Outbound => {
                        let at = self.outbound(line, p, ev.time, start, end)?;
                        self.last_us = at;
                    }
                }
            }
            Action::Syscall(s) => {
                // A call waits for a blocked one to return first.
                self.finish_blocked()?;
                self.advance(line, start)?;
                self.syscall(line, s, ev.time, start)?;
                self.last_us = start;
            }
        }
        Ok(())
    }

    /// The tolerance (µs) of an event due at `at_us`.
    fn tolerance_at(&self, at_us: u64) -> u64 {
        self.tolerance + at_us.saturating_sub(self.last_us) * self.tolerance_percent / 100
    }

    fn advance(&mut self, line: usize, to_us: u64) -> Result<(), Stop> {
        self.be.advance_to(to_us).map_err(backend_err(line))?;
        self.check_blocked()
    }

    fn command(&mut self, line: usize, text: &str) -> Result<(), Stop> {
        let settings = match sysctls(text) {
            Ok(s) => s,
            Err(piece) => return unsupported(line, format!("shell command {piece}")),
        };
        for (k, v) in settings {
            self.be.sysctl(&k, &v).map_err(backend_err(line))?;
        }
        Ok(())
    }

    fn addrs_in(&self) -> Addrs {
        Addrs {
            src: self.setup.remote_ip,
            dst: self.setup.local_ip,
        }
    }

    fn inbound(&mut self, line: usize, p: &PacketSpec) -> Result<(), Stop> {
        let Some(win) = p.win else {
            return fail(line, "an inbound segment needs its window (win N)");
        };
        let (src_port, dst_port) = match p.ports {
            Some(ports) => ports,
            None => {
                let Some(local) = self.local_port else {
                    return fail(
                        line,
                        "inbound segment before the stack has a port (no bind, no SYN out)",
                    );
                };
                (self.remote_port, local)
            }
        };
        let isn = self.isn(src_port);
        let mut options = Vec::new();
        for o in p.options.iter().flatten() {
            options.push(match o {
                TcpOption::Sack(blocks) => TcpOption::Sack(
                    blocks
                        .iter()
                        .map(|(a, b)| (a.wrapping_add(isn), b.wrapping_add(isn)))
                        .collect(),
                ),
                TcpOption::Timestamp { val, ecr } if p.flags.ack => TcpOption::Timestamp {
                    val: *val,
                    ecr: self.live_ecr(line, src_port, *ecr)?,
                },
                other => other.clone(),
            });
        }
        let seg = Segment {
            src_port,
            dst_port,
            flags: p.flags,
            seq: p.seq,
            ack: if p.flags.ack {
                p.ack.unwrap_or(0).wrapping_add(isn)
            } else {
                p.ack.unwrap_or(0)
            },
            win,
            urg: 0,
            options,
            len: p.len,
        };
        if self.trace {
            eprintln!("{} < {seg}", secs(self.be.now_us()));
        }
        let packet = segment::build(&self.addrs_in(), &seg);
        if packet.len() > usize::from(self.setup.mtu) {
            return unsupported(
                line,
                format!(
                    "an inbound packet of {} bytes, over the link MTU of {} (packetdrill's TUN takes it; a link does not)",
                    packet.len(),
                    self.setup.mtu
                ),
            );
        }
        self.be.inject(&packet).map_err(backend_err(line))
    }

    /// The stack's ISN on the connection with remote port `port` (0 until
    /// known).
    fn isn(&self, port: u16) -> u32 {
        self.flows.get(&port).and_then(|f| f.isn).unwrap_or(0)
    }

    /// The next packet the stack sent: one put back first, else the
    /// backend's (waiting until `until_us`).
    fn next_out(&mut self, line: usize, until_us: u64) -> Result<Option<Outbound>, Stop> {
        if let Some(o) = self.put_back.take() {
            return Ok(Some(o));
        }
        self.be.next_outbound(until_us).map_err(backend_err(line))
    }

    /// Without `--strict_segments`, as packetdrill with segmentation
    /// offload: a `>` line longer than the segment seen matches it joined
    /// with the segments that continue it, sent at the same time (within
    /// the tolerance) with the same ACK and flags (PSH from any).
    fn merge_following(
        &mut self,
        line: usize,
        p: &PacketSpec,
        at: u64,
        mut seg: Segment,
    ) -> Result<Segment, Stop> {
        let isn = self.isn(seg.dst_port);
        while seg.len < p.len
            && seg.seq == p.seq
            && !(seg.flags.syn || seg.flags.fin || seg.flags.rst)
        {
            let Some(o) = self.next_out(line, at)? else {
                break;
            };
            let next = match segment::parse(&o.packet) {
                Ok(Parsed::Tcp(_, n)) => n,
                _ => {
                    self.put_back = Some(o);
                    break;
                }
            };
            let same = |f: crate::script::ast::Flags| crate::script::ast::Flags { psh: false, ..f };
            let continues = next.seq.wrapping_sub(isn) == seg.seq.wrapping_add(u32::from(seg.len))
                && next.ack == seg.ack
                && same(next.flags) == same(seg.flags)
                && o.at_us <= at + self.tolerance
                && u32::from(seg.len) + u32::from(next.len) <= u32::from(u16::MAX);
            if !continues {
                self.put_back = Some(o);
                break;
            }
            if self.trace {
                eprintln!("{} > (joined) {} bytes more", secs(o.at_us), next.len);
            }
            seg.len += next.len;
            seg.flags.psh |= next.flags.psh;
            seg.win = next.win;
        }
        Ok(seg)
    }

    /// Prints what the stack sends until `until_us` (tracing a failure).
    fn trace_rest(&mut self, until_us: u64) {
        while let Ok(Some(o)) = self.next_out(0, until_us) {
            if let Ok(Parsed::Tcp(_, mut seg)) = segment::parse(&o.packet) {
                seg.seq = seg.seq.wrapping_sub(self.isn(seg.dst_port));
                eprintln!("{} > {seg} (after the failure)", secs(o.at_us));
            }
        }
    }

    /// The live TS ecr for the script's `ecr`: the live TS val sent for
    /// that script value, else as packetdrill infers one.
    fn live_ecr(&self, line: usize, remote_port: u16, ecr: u32) -> Result<u32, Stop> {
        if ecr == 0 {
            return Ok(0);
        }
        let empty = Vec::new();
        let ts_map = self.flows.get(&remote_port).map_or(&empty, |f| &f.ts_map);
        if let Some((_, live)) = ts_map.iter().rev().find(|(s, _)| *s == ecr) {
            return Ok(*live);
        }
        // packetdrill's default: the live value of the latest script value
        // before it; with --tcp_ts_ecr_scaled: interpolated from the first
        // (the stack's TS clock taken to tick as the script's).
        let preceding = ts_map
            .iter()
            .filter(|(s, _)| *s < ecr)
            .max_by_key(|(s, _)| *s)
            .map(|(_, live)| *live);
        match (self.ecr_scaled, ts_map.first(), preceding) {
            (true, Some((s, live)), _) => Ok(live.wrapping_add(ecr.wrapping_sub(*s))),
            (false, _, Some(live)) => Ok(live),
            _ => fail(
                line,
                format!(
                    "unable to infer the live TS ecr for script TS ecr {ecr}: no outbound segment with TS val written in the script yet"
                ),
            ),
        }
    }

    fn outbound(
        &mut self,
        line: usize,
        p: &PacketSpec,
        time: EventTime,
        start: u64,
        end: u64,
    ) -> Result<u64, Stop> {
        let tolerance = self.tolerance_at(end);
        let deadline = end + tolerance;
        let (at, seg) = loop {
            let got = self.next_out(line, deadline)?;
            self.check_blocked()?;
            let Some(Outbound { at_us, packet }) = got else {
                return Err(Stop::Fail(Failure {
                    line,
                    message: format!(
                        "expected outbound packet not sent by {:.6} s",
                        deadline as f64 / 1e6
                    ),
                    expected: Some(format!("> {}", spec_text(p))),
                    actual: None,
                }));
            };
            match segment::parse(&packet) {
                Ok(Parsed::Tcp(_, seg)) => break (at_us, seg),
                // ICMPv6 the stack sends on its own (none expected of it
                // by a TCP script) is not the script's business.
                Ok(Parsed::Other(58)) => continue,
                Ok(Parsed::Other(proto)) => {
                    return fail(
                        line,
                        format!("outbound IP protocol {proto} packet, not TCP"),
                    )
                }
                Err(e) => return fail(line, format!("outbound packet does not parse: {e}")),
            }
        };
        // Learn the connection's ISN from the stack's first SYN on it,
        // and the stack's port from its first segment.
        let flow = self.flows.entry(seg.dst_port).or_default();
        if flow.isn.is_none() {
            flow.isn = Some(if seg.flags.syn {
                seg.seq.wrapping_sub(p.seq)
            } else {
                0
            });
        }
        if self.local_port.is_none() {
            self.local_port = Some(seg.src_port);
            self.remote_port = seg.dst_port;
        }
        let isn = self.isn(seg.dst_port);
        let mut rel = seg.clone();
        rel.seq = seg.seq.wrapping_sub(isn);
        if self.trace {
            eprintln!("{} > {rel}", secs(at));
        }
        // Remember what the stack's TS val stands for in the script.
        if let (
            Some(TcpOption::Timestamp {
                val: script_val, ..
            }),
            Some(live),
        ) = (
            p.options
                .iter()
                .flatten()
                .find(|o| matches!(o, TcpOption::Timestamp { .. })),
            seg.options.iter().find_map(|o| match o {
                TcpOption::Timestamp { val, .. } => Some(*val),
                _ => None,
            }),
        ) {
            self.flows
                .entry(seg.dst_port)
                .or_default()
                .ts_map
                .push((*script_val, live));
        }
        if !self.strict_segments {
            rel = self.merge_following(line, p, at, rel)?;
        }
        let diffs = differences(p, &rel, self.mode);
        if !diffs.is_empty() {
            if self.trace {
                self.trace_rest(at + 2_000_000);
            }
            return Err(Stop::Fail(Failure {
                line,
                message: diffs.join("; "),
                expected: Some(format!("> {}", spec_text(p))),
                actual: Some(format!("> {rel}")),
            }));
        }
        if time != EventTime::Any && (at + tolerance < start || at > end + tolerance) {
            return Err(Stop::Fail(Failure {
                line,
                message: format!(
                    "timing error: expected outbound packet at {} s, actual at {} s (tolerance {} µs)",
                    window_text(start, end),
                    secs(at),
                    tolerance
                ),
                expected: Some(format!("> {}", spec_text(p))),
                actual: Some(format!("> {rel}")),
            }));
        }
        Ok(at)
    }

    fn syscall(
        &mut self,
        line: usize,
        s: &SyscallSpec,
        time: EventTime,
        start: u64,
    ) -> Result<(), Stop> {
        let call = self.resolve(line, s)?;
        let end_us = match s.end_time {
            None => start,
            Some(e) => match time {
                EventTime::Relative(_) => self.last_us + e,
                _ => e,
            },
        };
        match self.be.call(&call).map_err(backend_err(line))? {
            CallStatus::Done(r) => {
                if end_us > start + self.tolerance_at(end_us) {
                    return fail(
                        line,
                        format!(
                            "{} returned at once ({} s) but the script expects it to block until {} s",
                            s.name,
                            secs(start),
                            secs(end_us)
                        ),
                    );
                }
                self.after_call(&call, &r);
                self.check_result(line, s, &r)
            }
            CallStatus::Blocked => {
                self.blocked = Some(Blocked {
                    line,
                    spec: s.clone(),
                    call,
                    end_us,
                    tolerance: self.tolerance_at(end_us),
                });
                self.check_blocked()
            }
        }
    }

    /// What a successful call teaches the runner (the stack's port).
    fn after_call(&mut self, call: &Syscall, r: &CallResult) {
        if r.ret < 0 {
            return;
        }
        match call {
            Syscall::Bind { addr, .. } => self.local_port = Some(addr.port()),
            Syscall::Connect { addr, .. } => self.remote_port = addr.port(),
            _ => {}
        }
    }

    /// Checks a blocked call that returned.
    fn check_blocked(&mut self) -> Result<(), Stop> {
        if self.blocked.is_none() {
            return Ok(());
        }
        let Some((at, r)) = self.be.take_blocked() else {
            return Ok(());
        };
        let b = self.blocked.take().expect("checked above");
        if at + b.tolerance < b.end_us || at > b.end_us + b.tolerance {
            return fail(
                b.line,
                format!(
                    "timing error: {} expected to return at {} s, returned at {} s",
                    b.spec.name,
                    secs(b.end_us),
                    secs(at)
                ),
            );
        }
        self.after_call(&b.call, &r);
        self.check_result(b.line, &b.spec, &r)
    }

    /// Waits for a blocked call to return by its time.
    fn finish_blocked(&mut self) -> Result<(), Stop> {
        let Some(b) = &self.blocked else {
            return Ok(());
        };
        let (line, until, name) = (b.line, b.end_us + b.tolerance, b.spec.name.clone());
        self.be.advance_to(until).map_err(backend_err(line))?;
        self.check_blocked()?;
        if self.blocked.is_some() {
            return fail(line, format!("{name} still blocked at {} s", secs(until)));
        }
        Ok(())
    }

    fn check_result(&self, line: usize, s: &SyscallSpec, r: &CallResult) -> Result<(), Stop> {
        let expected_ret = match eval(&s.result) {
            Some(v) => v,
            None => return unsupported(line, format!("result expression {:?}", s.result)),
        };
        let actual_text = match r.errno {
            Some(e) => format!("{} {}", r.ret, symbols::errno_name(e)),
            None => r.ret.to_string(),
        };
        let expected_text = match &s.errno {
            Some(e) => format!("{expected_ret} {}", e.name),
            None => expected_ret.to_string(),
        };
        let mismatch = |what: &str| {
            Err(Stop::Fail(Failure {
                line,
                message: format!("{} {what}", s.name),
                expected: Some(format!("= {expected_text}")),
                actual: Some(format!("= {actual_text}")),
            }))
        };
        if expected_ret != r.ret {
            return mismatch("returned an unexpected value");
        }
        if let Some(e) = &s.errno {
            let Some(want) = symbols::errno(&e.name) else {
                return unsupported(line, format!("errno {}", e.name));
            };
            if r.errno != Some(want)
                && !(want == libc::EAGAIN && r.errno == Some(libc::EWOULDBLOCK))
            {
                return mismatch("failed with an unexpected errno");
            }
        } else if r.ret == -1 {
            return mismatch("failed");
        }
        // getsockopt's value.
        if s.name == "getsockopt" {
            if let Some(Expr::List(v)) = s.args.get(3) {
                if let (Some(want), Some(got)) = (v.first().and_then(eval), r.value) {
                    if want != got {
                        return Err(Stop::Fail(Failure {
                            line,
                            message: "getsockopt returned an unexpected value".into(),
                            expected: Some(format!("[{want}]")),
                            actual: Some(format!("[{got}]")),
                        }));
                    }
                }
            }
        }
        if s.name == "poll" {
            if let Some(Expr::List(fds)) = s.args.first() {
                for (i, pfd) in fds.iter().enumerate() {
                    let want = field(pfd, "revents").and_then(eval).unwrap_or(0);
                    let got = r.revents.get(i).copied().map_or(0, i64::from);
                    if want != got {
                        return Err(Stop::Fail(Failure {
                            line,
                            message: format!("poll revents of entry {i}"),
                            expected: Some(format!("revents={want:#x}")),
                            actual: Some(format!("revents={got:#x}")),
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    fn sockaddr(&self, line: usize, e: &Expr, remote: bool) -> Result<SocketAddr, Stop> {
        let ip = if remote {
            self.setup.remote_ip
        } else {
            self.setup.local_ip
        };
        let ip = match (self.setup.ip, ip) {
            (IpVersion::V4MappedV6, IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
            (_, a) => a,
        };
        match e {
            Expr::Ellipsis => Ok(SocketAddr::new(ip, SCRIPT_PORT)),
            Expr::Struct(_) => {
                let port = field(e, "sin_port")
                    .or_else(|| field(e, "sin6_port"))
                    .and_then(eval)
                    .unwrap_or(i64::from(SCRIPT_PORT));
                let addr = field(e, "sin_addr").or_else(|| field(e, "sin6_addr"));
                let ip = match addr {
                    None => ip,
                    Some(Expr::Call(f, args)) if f == "inet_addr" || f == "inet6_addr" => {
                        match args.first() {
                            Some(Expr::Str(s)) => match s.parse::<IpAddr>() {
                                Ok(a) => a,
                                Err(_) => return fail(line, format!("bad address {s}")),
                            },
                            _ => return fail(line, "bad address"),
                        }
                    }
                    Some(other) => return unsupported(line, format!("address {other:?}")),
                };
                let Ok(port) = u16::try_from(port) else {
                    return fail(line, "port out of range");
                };
                Ok(SocketAddr::new(ip, port))
            }
            other => unsupported(line, format!("socket address {other:?}")),
        }
    }

    /// The concrete call for `s`.
    fn resolve(&self, line: usize, s: &SyscallSpec) -> Result<Syscall, Stop> {
        let arg = |i: usize| s.args.get(i);
        let int = |i: usize| -> Result<i64, Stop> {
            match arg(i).and_then(eval) {
                Some(v) => Ok(v),
                None => fail(
                    line,
                    format!("{}: argument {} is not a number", s.name, i + 1),
                ),
            }
        };
        let fd = || int(0).map(|v| v as i32);
        // A length the runner will allocate: bounded.
        let len = |i: usize| -> Result<usize, Stop> {
            match int(i)? {
                n @ 0..=MAX_IO_LEN => Ok(n as usize),
                n => fail(
                    line,
                    format!("{}: length {n} out of range (0..={MAX_IO_LEN})", s.name),
                ),
            }
        };
        let no_flags = |i: usize| -> Result<(), Stop> {
            match arg(i).map(|e| (e, eval(e))) {
                None | Some((Expr::Ellipsis, _)) | Some((_, Some(0))) => Ok(()),
                Some((_, Some(v))) if v == i64::from(libc::MSG_NOSIGNAL) => Ok(()),
                Some((e, _)) => unsupported(line, format!("{} flags {e:?}", s.name)),
            }
        };
        Ok(match s.name.as_str() {
            "socket" => {
                let family = match arg(0) {
                    Some(Expr::Ellipsis) | None => match self.setup.ip {
                        IpVersion::V4 => Family::Inet,
                        _ => Family::Inet6,
                    },
                    Some(e) => match eval(e).map(|v| v as i32) {
                        Some(libc::AF_INET) => Family::Inet,
                        Some(libc::AF_INET6) => Family::Inet6,
                        _ => return unsupported(line, format!("socket family {e:?}")),
                    },
                };
                let ty = int(1)?;
                let nonblocking = ty & i64::from(libc::SOCK_NONBLOCK) != 0;
                let base = ty & !i64::from(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
                if base != i64::from(libc::SOCK_STREAM) {
                    return unsupported(line, "sockets other than SOCK_STREAM");
                }
                if let Some(p) = arg(2).and_then(eval) {
                    if p != 0 && p != i64::from(libc::IPPROTO_TCP) {
                        return unsupported(line, "protocols other than TCP");
                    }
                }
                Syscall::Socket {
                    family,
                    nonblocking,
                }
            }
            "bind" => Syscall::Bind {
                fd: fd()?,
                addr: self.sockaddr(line, arg(1).unwrap_or(&Expr::Ellipsis), false)?,
            },
            "listen" => Syscall::Listen {
                fd: fd()?,
                backlog: int(1)? as i32,
            },
            "accept" | "accept4" => Syscall::Accept { fd: fd()? },
            "connect" => Syscall::Connect {
                fd: fd()?,
                addr: self.sockaddr(line, arg(1).unwrap_or(&Expr::Ellipsis), true)?,
            },
            "write" => Syscall::Write {
                fd: fd()?,
                len: len(2)?,
            },
            "send" | "sendto" => {
                no_flags(3)?;
                Syscall::Write {
                    fd: fd()?,
                    len: len(2)?,
                }
            }
            "read" => Syscall::Read {
                fd: fd()?,
                len: len(2)?,
            },
            "recv" | "recvfrom" => {
                no_flags(3)?;
                Syscall::Read {
                    fd: fd()?,
                    len: len(2)?,
                }
            }
            "writev" | "readv" => {
                let Some(Expr::List(iovs)) = arg(1) else {
                    return unsupported(line, format!("{} without an iovec list", s.name));
                };
                let mut len = 0usize;
                for iov in iovs {
                    match iov {
                        Expr::Struct(parts) => match parts.get(1).and_then(eval) {
                            Some(n) if (0..=MAX_IO_LEN).contains(&n) => len += n as usize,
                            _ => return fail(line, "iovec without a length in range"),
                        },
                        _ => return fail(line, "iovec is not {..., N}"),
                    }
                }
                if len > MAX_IO_LEN as usize {
                    return fail(line, format!("{}: length {len} out of range", s.name));
                }
                if s.name == "writev" {
                    Syscall::Write { fd: fd()?, len }
                } else {
                    Syscall::Read { fd: fd()?, len }
                }
            }
            "close" => Syscall::Close { fd: fd()? },
            "shutdown" => Syscall::Shutdown {
                fd: fd()?,
                how: match int(1)? as i32 {
                    libc::SHUT_RD => ShutdownHow::Read,
                    libc::SHUT_WR => ShutdownHow::Write,
                    libc::SHUT_RDWR => ShutdownHow::Both,
                    v => return fail(line, format!("shutdown how {v}")),
                },
            },
            "setsockopt" | "getsockopt" => {
                let opt = sockopt(line, int(1)? as i32, int(2)? as i32)?;
                if s.name == "getsockopt" {
                    Syscall::GetSockOpt { fd: fd()?, opt }
                } else {
                    let (value, linger_secs) = match arg(3) {
                        Some(Expr::List(v)) => (v.first().and_then(eval).unwrap_or(0), 0),
                        Some(e @ Expr::Struct(_)) => (
                            field(e, "onoff").and_then(eval).unwrap_or(0),
                            field(e, "linger").and_then(eval).unwrap_or(0),
                        ),
                        Some(e) => match eval(e) {
                            Some(v) => (v, 0),
                            None => return unsupported(line, format!("option value {e:?}")),
                        },
                        None => return fail(line, "setsockopt without a value"),
                    };
                    Syscall::SetSockOpt {
                        fd: fd()?,
                        opt,
                        value,
                        linger_secs,
                    }
                }
            }
            "fcntl" => match int(1)? as i32 {
                libc::F_SETFL => Syscall::SetNonBlocking {
                    fd: fd()?,
                    on: int(2)? & i64::from(libc::O_NONBLOCK) != 0,
                },
                libc::F_GETFL => Syscall::GetFlags { fd: fd()? },
                v => return unsupported(line, format!("fcntl command {v}")),
            },
            "poll" => {
                let Some(Expr::List(entries)) = arg(0) else {
                    return fail(line, "poll without a pollfd list");
                };
                let timeout_ms = int(2)? as i32;
                if timeout_ms != 0 {
                    return unsupported(line, "poll with a timeout (only 0 is supported)");
                }
                let mut fds = Vec::new();
                for e in entries {
                    let (Some(f), Some(ev)) = (
                        field(e, "fd").and_then(eval),
                        field(e, "events").and_then(eval),
                    ) else {
                        return fail(line, "pollfd without fd or events");
                    };
                    fds.push((f as i32, ev as i16));
                }
                Syscall::Poll { fds, timeout_ms }
            }
            other => return unsupported(line, format!("system call {other}")),
        })
    }
}

fn sockopt(line: usize, level: i32, name: i32) -> Result<SockOpt, Stop> {
    Ok(match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => SockOpt::ReuseAddr,
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => SockOpt::ReusePort,
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => SockOpt::KeepAlive,
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => SockOpt::SndBuf,
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => SockOpt::RcvBuf,
        (libc::SOL_SOCKET, libc::SO_LINGER) => SockOpt::Linger,
        (libc::SOL_SOCKET, libc::SO_ERROR) => SockOpt::Error,
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => SockOpt::NoDelay,
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => SockOpt::MaxSeg,
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => SockOpt::KeepIdle,
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => SockOpt::KeepIntvl,
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => SockOpt::KeepCnt,
        _ => return unsupported(line, format!("socket option level {level} name {name}")),
    })
}

/// The value of field `name` of a struct expression.
fn field<'e>(e: &'e Expr, name: &str) -> Option<&'e Expr> {
    match e {
        Expr::Struct(parts) => parts.iter().find_map(|p| match p {
            Expr::Field(n, v) if n == name => Some(v.as_ref()),
            _ => None,
        }),
        _ => None,
    }
}

/// The integer value of an expression (symbols, `|`, `htons`).
pub fn eval(e: &Expr) -> Option<i64> {
    match e {
        Expr::Int(v) => Some(*v),
        Expr::Word(w) => symbols::value(w),
        Expr::Or(a, b) => Some(eval(a)? | eval(b)?),
        Expr::Call(f, args) if f == "htons" || f == "htonl" => args.first().and_then(eval),
        _ => None,
    }
}

fn secs(us: u64) -> String {
    format!("{:.6}", us as f64 / 1e6)
}

fn window_text(start: u64, end: u64) -> String {
    if start == end {
        secs(start)
    } else {
        format!("{}~{}", secs(start), secs(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse;

    #[test]
    fn options_make_the_setup() {
        let s = parse("--ip_version=ipv6\n--tolerance_usecs=10000\n0 close(3) = 0").unwrap();
        let (setup, tol, _) = setup_of(&s).unwrap();
        assert_eq!(setup.ip, IpVersion::V6);
        assert!(setup.local_ip.is_ipv6());
        assert_eq!(tol, 10_000);
        let s = parse("--bogus=1\n0 close(3) = 0").unwrap();
        assert_eq!(setup_of(&s).unwrap_err(), (1, "option --bogus".to_string()));
    }

    #[test]
    fn expressions_evaluate() {
        let s = parse("0 socket(..., SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 3").unwrap();
        let Action::Syscall(c) = &s.events[0].action else {
            panic!()
        };
        assert_eq!(
            eval(&c.args[1]),
            Some(i64::from(libc::SOCK_STREAM | libc::SOCK_NONBLOCK))
        );
        assert_eq!(eval(&c.result), Some(3));
    }
}
