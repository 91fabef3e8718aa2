//! The Linux kernel as the script's local side, as packetdrill runs it.
//!
//! Each script gets a [`Lab`]: a fresh network namespace ([`netns`]) with a
//! TUN device ([`tun`]) whose kernel side has the script's local addresses
//! and a route to its remote ones. The script's socket calls are the
//! kernel's own ([`calls`]), on real sockets on real time, each on a thread
//! inside the namespace; the remote side's packets are written to the TUN
//! and the kernel's read from it.

pub mod calls;
pub mod netns;
pub mod tun;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns::Namespace;
use tun::Tun;

/// The TUN device's name inside the namespace.
pub const TUN_NAME: &str = "tun0";

/// The largest window a socket of the lab offers (TCP_WINDOW_CLAMP):
/// tpa's default receive queue. The window shift a stack offers follows
/// from its largest window (RFC 7323 §2.3); the kernel's own comes from
/// the machine-wide `net.core.rmem_max` and `tcp_rmem` (shift 7 to 10),
/// and every SYN would differ from tpa's (shift 4) by a setting rather
/// than a behaviour.
pub const WINDOW_CLAMP: i32 = 512 * 1024;

/// The kernel's side of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The kernel's address (IPv4 or IPv6).
    pub local: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The TUN device's MTU.
    pub mtu: u16,
}

/// One script's kernel: a namespace, its TUN device and addresses, and the
/// congestion control every socket of the script is pinned to.
#[derive(Debug)]
pub struct Lab {
    ns: Namespace,
    tun: Arc<Tun>,
    link: Link,
    cc: String,
}

impl Lab {
    /// A fresh namespace with TUN device [`TUN_NAME`] up, the local
    /// address on it and every other address routed through it, and `cc`
    /// (`cubic`, `reno`) as the congestion control of every socket
    /// [`pin`](Lab::pin) is given.
    ///
    /// # Errors
    /// If any step fails (not root, no /dev/net/tun, `cc` not built in).
    pub fn new(link: Link, cc: &str) -> io::Result<Lab> {
        let ns = Namespace::new()?;
        let tun = Arc::new(Tun::create(&ns, TUN_NAME)?);
        // No duplicate address detection, router solicitations or
        // autoconfiguration: the only IPv6 the kernel sends is the script's.
        for (key, value) in [
            ("accept_dad", "0"),
            ("router_solicitations", "0"),
            ("autoconf", "0"),
        ] {
            ns.set_sysctl(&format!("net.ipv6.conf.{TUN_NAME}.{key}"), value)?;
        }
        let local = format!("{}/{}", link.local, link.prefix_len);
        let mtu = link.mtu.to_string();
        let mut add_local = vec!["ip", "addr", "add", &local, "dev", TUN_NAME];
        if link.local.is_ipv6() {
            add_local.push("nodad");
        }
        for argv in [
            &["ip", "link", "set", "dev", TUN_NAME, "mtu", &mtu, "up"][..],
            &add_local,
            // Every address not the namespace's own is the script's side.
            &["ip", "-4", "route", "add", "default", "dev", TUN_NAME],
            &["ip", "-6", "route", "add", "default", "dev", TUN_NAME],
        ] {
            ns.run(argv)?;
        }
        wait_until_local(&ns, link.local)?;
        // The namespace's default where the machine allows it (a namespace
        // other than the first may choose only from the machine-wide
        // tcp_allowed_congestion_control); every socket is pinned anyway.
        let _ = ns.set_sysctl("net.ipv4.tcp_congestion_control", cc);
        let lab = Lab {
            ns,
            tun,
            link,
            cc: cc.to_owned(),
        };
        Ok(lab)
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The TUN device: the wire to the kernel.
    pub fn tun(&self) -> &Arc<Tun> {
        &self.tun
    }

    /// The largest window a socket of the lab offers (TCP_WINDOW_CLAMP):
    /// tpa's default receive queue. The window shift a stack offers follows
    /// from its largest window (RFC 7323 §2.3); the kernel's own comes from
    /// the machine-wide `net.core.rmem_max` and `tcp_rmem` (shift 7 to 10),
    /// and every SYN would differ from tpa's (shift 4) by a setting rather
    /// than a behaviour.
    pub const WINDOW_CLAMP: i32 = 512 * 1024;

    /// The kernel's side of the link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The congestion control sockets are pinned to.
    pub fn congestion_control(&self) -> &str {
        &self.cc
    }

    /// Pins sockets made from now on to `cc` instead (a script's
    /// `net.ipv4.tcp_congestion_control`), and makes it the namespace's
    /// default where the machine allows.
    ///
    /// # Errors
    /// If the kernel has no such algorithm.
    pub fn set_congestion_control(&mut self, cc: &str) -> io::Result<()> {
        let available = self
            .ns
            .sysctl("net.ipv4.tcp_available_congestion_control")?;
        if !available.split_whitespace().any(|a| a == cc) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("congestion control {cc} is not in this kernel ({available})"),
            ));
        }
        let _ = self.ns.set_sysctl("net.ipv4.tcp_congestion_control", cc);
        cc.clone_into(&mut self.cc);
        Ok(())
    }

    /// Pins socket `fd` to the lab's congestion control (TCP_CONGESTION,
    /// which root may set to any algorithm the kernel has) and its
    /// largest window to [`WINDOW_CLAMP`]. A listener's pins carry over
    /// to the connections it accepts.
    ///
    /// # Errors
    /// setsockopt's error.
    pub fn pin(&self, fd: i32) -> io::Result<()> {
        for (name, what, value) in [
            (
                libc::TCP_CONGESTION,
                "TCP_CONGESTION",
                calls::OptValue::Str(self.cc.clone()),
            ),
            (
                libc::TCP_WINDOW_CLAMP,
                "TCP_WINDOW_CLAMP",
                calls::OptValue::Int(WINDOW_CLAMP),
            ),
        ] {
            let o = calls::execute(&calls::Call::SetSockOpt {
                fd,
                level: libc::IPPROTO_TCP,
                name,
                value: value.clone(),
            });
            if let Some(e) = o.errno {
                let err = io::Error::from_raw_os_error(e);
                return Err(io::Error::new(
                    err.kind(),
                    format!("{what} {value:?}: {err}"),
                ));
            }
        }
        Ok(())
    }
}

/// Waits until the kernel takes packets for `local`: an IPv6 address
/// becomes local (its route in table `local`) on a work queue a moment
/// after it is added, even without duplicate address detection, and a
/// script's first SYN to it before then was dropped (Ip6InAddrErrors).
fn wait_until_local(ns: &Namespace, local: IpAddr) -> io::Result<()> {
    if local.is_ipv4() {
        return Ok(());
    }
    let addr = local.to_string();
    let start = Instant::now();
    loop {
        let routes = ns.run(&["ip", "-6", "route", "show", "table", "local", &addr])?;
        if !routes.trim().is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(5) {
            return Err(io::Error::other(format!("{addr} not local after 5 s")));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
pub(crate) mod tests;
