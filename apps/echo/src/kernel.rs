//! `--kernel`: the same server and client over the kernel's UDP sockets
//! (`std::net::UdpSocket`), the far end of the tests and the baseline of
//! the benchmark.

use std::io::{self, ErrorKind};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use tpa::worker::StopFlag;

use crate::config::{ClientConfig, ServerConfig};
use crate::report::{ClientReport, ServerReport};
use crate::session::Session;

/// How often a blocked server looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A kernel socket for `config`, bound: the server's (`--ip` and
/// `--udp-port`; without `--ip`, `[::]`, which also takes IPv4).
pub fn bind_server(config: &ServerConfig) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(config.endpoint.kernel_bind(true, config.udp_port))?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    Ok(socket)
}

/// Echoes every datagram on `socket` to its sender until `stop` is
/// raised, `config.count` datagrams were echoed or `config.duration`
/// passed.
pub fn serve(
    socket: &UdpSocket,
    config: &ServerConfig,
    stop: &StopFlag,
) -> io::Result<ServerReport> {
    let deadline = config.duration.map(|d| Instant::now() + d);
    let mut report = ServerReport::default();
    let mut buf = vec![0u8; 65_536];
    while !stop.is_raised()
        && config.count.is_none_or(|c| report.echoed < c)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if is_nothing_yet(&e) => continue,
            // An ICMP error about an earlier echo, reported on this socket.
            Err(e) if is_icmp_report(&e) => {
                report.failed(&errno_name(&e));
                continue;
            }
            Err(e) => return Err(e),
        };
        report.received += 1;
        match socket.send_to(&buf[..n], from) {
            Ok(_) => {
                report.echoed += 1;
                report.bytes += n as u64;
            }
            Err(e) => report.failed(&errno_name(&e)),
        }
    }
    Ok(report)
}

/// The kernel client: a socket connected to `config.to` (bound to `--ip`
/// and `--udp-port` when given) sends the session's datagrams and checks
/// the echoes, until done or `stop`.
pub fn run_client(config: &ClientConfig, stop: &StopFlag) -> io::Result<ClientReport> {
    let local = config
        .endpoint
        .kernel_bind(config.to.is_ipv6(), config.local_port);
    let socket = UdpSocket::bind(local)?;
    socket.connect(config.to)?;
    let epoch = Instant::now();
    let now = || u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut session = Session::new(config.plan(), now());
    let mut out = vec![0u8; config.size];
    let mut buf = vec![0u8; 65_536];
    let mut timeout = None;
    while !session.is_done() && !stop.is_raised() {
        let t = now();
        session.expire(t);
        if let Some(seq) = session.next_send(t, &mut out) {
            match socket.send(&out) {
                Ok(n) if n == out.len() => {}
                Ok(_) => session.send_failed(seq),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    session.refused();
                    session.send_failed(seq);
                }
                Err(_) => session.send_failed(seq),
            }
            continue;
        }
        let wait_ns = session
            .next_wake_ns()
            .map_or(STOP_CHECK.as_nanos() as u64, |w| w.saturating_sub(t));
        if session.outstanding() == 0 {
            // Only the rate to wait for: sleep precisely (a receive timeout
            // is rounded to the kernel's tick).
            std::thread::sleep(Duration::from_nanos(wait_ns).min(STOP_CHECK));
            continue;
        }
        let wait = Duration::from_nanos(wait_ns.max(1_000)).min(STOP_CHECK);
        if timeout != Some(wait) {
            socket.set_read_timeout(Some(wait))?;
            timeout = Some(wait);
        }
        match socket.recv(&mut buf) {
            Ok(n) => session.on_reply(&buf[..n], now()),
            Err(e) if is_nothing_yet(&e) => {}
            // ICMP port unreachable for an earlier datagram.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => session.refused(),
            Err(e) => return Err(e),
        }
    }
    session.expire(now());
    Ok(session.report())
}

/// The errno's name of `e` (`EHOSTUNREACH`), or its text.
fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(11) => "EAGAIN",
        Some(90) => "EMSGSIZE",
        Some(101) => "ENETUNREACH",
        Some(105) => "ENOBUFS",
        Some(111) => "ECONNREFUSED",
        Some(113) => "EHOSTUNREACH",
        _ => return e.to_string().replace(' ', "_"),
    };
    name.to_owned()
}

/// Whether `e` only says nothing arrived: the receive timed out, or a
/// signal (the one that stops us, say) interrupted it.
fn is_nothing_yet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Whether `e` is an ICMP error the kernel reports on a socket about
/// something it sent earlier.
fn is_icmp_report(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    fn kernel() -> Endpoint {
        Endpoint {
            kernel: true,
            ips: vec!["127.0.0.1".parse().unwrap()],
            ..Endpoint::default()
        }
    }

    /// The kernel client against the kernel server on the loopback: every
    /// datagram comes back intact, and the server's count stops it.
    #[test]
    fn the_kernel_client_and_server_agree_on_the_loopback() {
        let server = ServerConfig {
            count: Some(200),
            ..ServerConfig::new(kernel(), 0)
        };
        // The server's socket as bind_server makes it, on a free port.
        let socket = bind_server(&server).unwrap();
        let to = socket.local_addr().unwrap();
        let stop = StopFlag::new();
        let report = std::thread::scope(|s| {
            let srv = s.spawn(|| serve(&socket, &server, &stop));
            let client = ClientConfig {
                window: 8,
                ..ClientConfig::new(kernel(), to, 200, 100)
            };
            let r = run_client(&client, &StopFlag::new()).unwrap();
            let served = srv.join().unwrap().unwrap();
            assert_eq!((served.received, served.echoed), (200, 200));
            assert_eq!(served.bytes, 200 * 100);
            r
        });
        assert!(report.is_clean(), "{report}");
        assert_eq!((report.sent, report.received), (200, 200));
        assert_eq!(report.rtts_ns.len(), 200);
        assert!(report.datagrams_per_s() > 0.0);
    }

    /// Nobody listens: the kernel reports port unreachable, the client
    /// counts it and every datagram as lost, and stops.
    #[test]
    fn a_closed_port_is_refused_and_lost_not_hung() {
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let client = ClientConfig {
            timeout: Duration::from_millis(100),
            ..ClientConfig::new(kernel(), closed, 3, 16)
        };
        let r = run_client(&client, &StopFlag::new()).unwrap();
        assert_eq!((r.sent, r.received, r.lost), (3, 0, 3));
        assert!(r.refused >= 1, "{r}");
    }
}
