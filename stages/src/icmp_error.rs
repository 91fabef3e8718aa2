//! What an ICMP error (RFC 792, RFC 4443) says to a socket and which
//! packet of ours it quotes, read the same way for TCP and UDP: the
//! message's type and code mapped to an error as Linux's
//! `icmp_err_convert` does (hard or soft), its checksum checked, and the
//! quoted IP header's addresses, protocol and first transport bytes.
//!
//! | message | code | says |
//! |---|---|---|
//! | v4 destination unreachable | 4 fragmentation needed (RFC 1191) | path MTU |
//! | v6 packet too big (RFC 8201) | | path MTU |
//! | v4 destination unreachable | 2 protocol, 3 port | hard: ECONNREFUSED |
//! | v4 destination unreachable | 6–10, 13–15 (unknown, isolated, prohibited, precedence) | hard: EHOSTUNREACH, ENETUNREACH |
//! | v4 destination unreachable | 0 net, 1 host, 5 source route, 11, 12 | soft: ENETUNREACH, EHOSTUNREACH |
//! | v6 destination unreachable | 4 port | hard: ECONNREFUSED |
//! | v6 destination unreachable | 1 prohibited, 5 policy, 6 reject route | hard: EHOSTUNREACH |
//! | v6 destination unreachable | 0 no route, 2 beyond scope, 3 address | soft: ENETUNREACH, EHOSTUNREACH |
//! | v4 / v6 time exceeded | any | soft: EHOSTUNREACH |
//!
//! Hard and soft follow Linux's "fatal" column (where Linux reports
//! ENOPROTOOPT, EHOSTDOWN, ENONET or EACCES, the closest [`SocketError`]
//! is used). Other messages (redirects, source quenches (RFC 6633),
//! parameter problems, everything not an error) say nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tpa::app::SocketError;
use tpa::stage::Reason;
use tpa::wire::icmpv4::Icmpv4View;
use tpa::wire::icmpv6::Icmpv6View;
use tpa::wire::ipv4::{IpProtocol, Ipv4View};
use tpa::wire::ipv6::Ipv6View;

/// What an ICMP error says, before its quote is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Says {
    /// The next hop's MTU as reported (0: none given).
    Mtu(u32),
    /// An error that ends a connection attempt (Linux: fatal).
    Hard(SocketError),
    /// An error worth keeping, not acting on.
    Soft(SocketError),
}

/// The packet of ours an ICMP error quotes: its addresses (ours first),
/// protocol, length as sent, and the transport bytes the quote holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// The quoted packet's source: our address.
    pub src: IpAddr,
    /// The quoted packet's destination: the peer.
    pub dst: IpAddr,
    /// The quoted packet's protocol (the IPv6 header's next header:
    /// extension headers are not walked).
    pub protocol: u8,
    /// The quoted packet's whole length as sent.
    pub sent_len: u16,
    /// What the quote holds past the IP header (RFC 792: at least 8
    /// bytes; fewer here is a drop for whoever reads them).
    pub transport: &'a [u8],
}

impl Quoted<'_> {
    /// The quoted source and destination ports (the first four bytes of
    /// TCP's and UDP's headers alike), if the quote holds them.
    pub fn ports(&self) -> Option<(u16, u16)> {
        let b = self.transport.get(..4)?;
        Some((
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        ))
    }
}

/// An IP packet read as an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<'a> {
    /// Not an ICMP error that says anything (or a later fragment's
    /// quote): for the next stage.
    Pass,
    /// Damaged: dropped for this reason (`malformed`, `bad-checksum`,
    /// `too-short`).
    Drop(Reason),
    /// An error saying this about that packet.
    Error(Says, Quoted<'a>),
}

/// What ICMPv4 type `t`, code `c` says, `None` when nothing.
fn says_v4(t: u8, c: u8, mtu: u16) -> Option<Says> {
    use SocketError::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    Some(match (t, c) {
        (3, 4) => Says::Mtu(u32::from(mtu)),
        (3, 2 | 3) => Says::Hard(ConnectionRefused),
        (3, 6 | 9) => Says::Hard(NetworkUnreachable),
        (3, 7 | 8 | 10 | 13..=15) => Says::Hard(HostUnreachable),
        (3, 0 | 11) => Says::Soft(NetworkUnreachable),
        (3, 1 | 5 | 12) => Says::Soft(HostUnreachable),
        (11, _) => Says::Soft(HostUnreachable),
        _ => return None,
    })
}

/// What ICMPv6 type `t`, code `c` says, `None` when nothing.
fn says_v6(t: u8, c: u8, mtu: u32) -> Option<Says> {
    use SocketError::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    Some(match (t, c) {
        (2, _) => Says::Mtu(mtu),
        (1, 4) => Says::Hard(ConnectionRefused),
        (1, 1 | 5 | 6) => Says::Hard(HostUnreachable),
        (1, 0) => Says::Soft(NetworkUnreachable),
        (1, 2 | 3) => Says::Soft(HostUnreachable),
        (3, _) => Says::Soft(HostUnreachable),
        _ => return None,
    })
}

/// The quote of an ICMPv4 error (the message from its ninth byte):
/// `Ok(None)` for a later fragment (no transport header).
fn quote_v4(q: &[u8]) -> Result<Option<Quoted<'_>>, Reason> {
    if q.len() < 20 {
        return Err(Reason::TOO_SHORT);
    }
    let ihl = usize::from(q[0] & 0x0f) * 4;
    if q[0] >> 4 != 4 || ihl < 20 {
        return Err(Reason::MALFORMED);
    }
    let offset = u16::from_be_bytes([q[6], q[7]]) & 0x1fff;
    if offset != 0 {
        return Ok(None);
    }
    Ok(Some(Quoted {
        src: IpAddr::V4(Ipv4Addr::new(q[12], q[13], q[14], q[15])),
        dst: IpAddr::V4(Ipv4Addr::new(q[16], q[17], q[18], q[19])),
        protocol: q[9],
        sent_len: u16::from_be_bytes([q[2], q[3]]),
        transport: q.get(ihl..).unwrap_or(&[]),
    }))
}

/// The quote of an ICMPv6 error.
fn quote_v6(q: &[u8]) -> Result<Quoted<'_>, Reason> {
    if q.len() < 40 {
        return Err(Reason::TOO_SHORT);
    }
    if q[0] >> 4 != 6 {
        return Err(Reason::MALFORMED);
    }
    let addr = |b: &[u8]| -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        a.into()
    };
    let payload = u16::from_be_bytes([q[4], q[5]]);
    Ok(Quoted {
        src: IpAddr::V6(addr(&q[8..24])),
        dst: IpAddr::V6(addr(&q[24..40])),
        protocol: q[6],
        sent_len: payload.saturating_add(40),
        transport: &q[40..],
    })
}

/// Reads an IPv4 packet (`l3` its IP header on, `icmp` its payload) as
/// an ICMP error whose quote's protocol is `protocol`; errors quoting
/// another protocol pass.
pub fn read_v4<'a>(l3: &[u8], icmp: &'a [u8], protocol: IpProtocol) -> Read<'a> {
    match Ipv4View::new(l3) {
        Ok(ip) if ip.protocol() == IpProtocol::Icmp => {}
        Ok(_) => return Read::Pass,
        Err(_) => return Read::Drop(Reason::MALFORMED),
    }
    if icmp.len() < 8 {
        return Read::Pass;
    }
    let mtu = u16::from_be_bytes([icmp[6], icmp[7]]);
    let Some(says) = says_v4(icmp[0], icmp[1], mtu) else {
        return Read::Pass;
    };
    if !Icmpv4View::new(icmp).is_ok_and(|v| v.checksum_ok()) {
        return Read::Drop(Reason::BAD_CHECKSUM);
    }
    match quote_v4(&icmp[8..]) {
        Ok(Some(q)) if q.protocol == protocol.raw() => Read::Error(says, q),
        Ok(_) => Read::Pass,
        Err(r) => Read::Drop(r),
    }
}

/// Reads an IPv6 packet as [`read_v4`] does an IPv4 one.
pub fn read_v6<'a>(l3: &[u8], icmp: &'a [u8], protocol: IpProtocol) -> Read<'a> {
    let (src, dst) = match Ipv6View::new(l3) {
        Ok(ip) if ip.next_header() == IpProtocol::Icmpv6 => (ip.src(), ip.dst()),
        Ok(_) => return Read::Pass,
        Err(_) => return Read::Drop(Reason::MALFORMED),
    };
    if icmp.len() < 8 {
        return Read::Pass;
    }
    let mtu = u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]);
    let Some(says) = says_v6(icmp[0], icmp[1], mtu) else {
        return Read::Pass;
    };
    if !Icmpv6View::new(icmp).is_ok_and(|v| v.checksum_ok_v6(&src, &dst)) {
        return Read::Drop(Reason::BAD_CHECKSUM);
    }
    match quote_v6(&icmp[8..]) {
        Ok(q) if q.protocol == protocol.raw() => Read::Error(says, q),
        Ok(_) => Read::Pass,
        Err(r) => Read::Drop(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classification_follows_linux_fatal_column() {
        use SocketError::{ConnectionRefused as Refused, HostUnreachable as Host};
        assert_eq!(says_v4(3, 3, 0), Some(Says::Hard(Refused)));
        assert_eq!(says_v4(3, 2, 0), Some(Says::Hard(Refused)));
        assert_eq!(says_v4(3, 13, 0), Some(Says::Hard(Host)));
        assert_eq!(says_v4(3, 1, 0), Some(Says::Soft(Host)));
        assert_eq!(says_v4(3, 4, 1280), Some(Says::Mtu(1280)));
        assert_eq!(says_v4(3, 16, 0), None);
        assert_eq!(says_v4(4, 0, 0), None, "source quench: RFC 6633");
        assert_eq!(says_v4(11, 0, 0), Some(Says::Soft(Host)));
        assert_eq!(says_v6(1, 4, 0), Some(Says::Hard(Refused)));
        assert_eq!(says_v6(1, 1, 0), Some(Says::Hard(Host)));
        assert_eq!(says_v6(1, 3, 0), Some(Says::Soft(Host)));
        assert_eq!(says_v6(2, 0, 1400), Some(Says::Mtu(1400)));
        assert_eq!(says_v6(1, 7, 0), None);
        assert_eq!(says_v6(4, 0, 0), None, "parameter problem");
        assert_eq!(says_v6(135, 0, 0), None);
    }
}
