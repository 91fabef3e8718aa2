//! The `tpa-responder` command on DPDK, as a user runs it: `--port
//! dpdk:net_tap0 … -- <EAL arguments> --vdev net_tap0,iface=…`, started in
//! a network namespace made here (so `net_tap` creates its interface
//! there), pinged by the kernel over IPv4 and IPv6, stopped with Ctrl-C
//! (SIGINT). Run as root:
//! `cargo test -p tpa-responder --features dpdk --test cli_dpdk`.

#![cfg(feature = "dpdk")]

use std::io::Read;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tpa_tests::netns::{unique_name, Netns};

/// A bound on waiting for the interface to appear (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);
const MAC: &str = "02:74:70:61:00:43";

/// Removes the responder's DPDK runtime directory (named after its
/// `--file-prefix`) on drop: of no use once it has ended.
struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

/// The responder process; interrupted (then killed) on drop.
struct Responder(Child);

impl Responder {
    fn interrupt(&self) {
        let pid = i32::try_from(self.0.id()).expect("pid");
        // SAFETY: sends a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_command_serves_a_net_tap_the_kernel_pings() {
    let ns = Netns::new("cli");
    let ifname = unique_name("tpc");
    let prefix = ns.name().to_owned();
    let _runtime_dir = RuntimeDir(prefix.clone());
    let vdev = format!("net_tap0,iface={ifname}");
    let child = ns
        .command(&[
            env!("CARGO_BIN_EXE_tpa-responder"),
            "--port",
            "dpdk:net_tap0",
            "--ip",
            "192.0.2.1/24",
            "--ip",
            "2001:db8::1/64",
            "--mac",
            MAC,
            "--interval",
            "0",
            "--",
            "-l",
            "0",
            "--no-huge",
            "--no-pci",
            "--no-shconf",
            "-m",
            "256",
            "--log-level",
            "*:error",
            "--file-prefix",
            &prefix,
            "--vdev",
            &vdev,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tpa-responder");
    let mut responder = Responder(child);

    // The interface appears once the EAL has created the vdev.
    let deadline = Instant::now() + PATIENCE;
    while !ns.ip(&["-br", "link"]).contains(&ifname) {
        if let Ok(Some(status)) = responder.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = responder.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("tpa-responder ended ({status}):\n{err}");
        }
        assert!(Instant::now() < deadline, "no {ifname} within {PATIENCE:?}");
        thread::sleep(Duration::from_millis(20));
    }
    ns.ip(&["addr", "add", "192.0.2.2/24", "dev", &ifname]);
    ns.ip(&["addr", "add", "2001:db8::2/64", "dev", &ifname, "nodad"]);
    ns.ip(&["link", "set", &ifname, "up"]);

    ns.ping_ok("-4", "192.0.2.1");
    ns.ping_ok("-6", "2001:db8::1");
    ns.assert_neighbor(&ifname, "192.0.2.1", MAC);
    ns.assert_neighbor(&ifname, "2001:db8::1", MAC);

    responder.interrupt();
    let mut out = String::new();
    responder
        .0
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read its output");
    let status = responder.0.wait().expect("wait");
    // It exits with success only if, once its port closed, every mbuf of
    // the device's pool was back.
    assert!(status.success(), "tpa-responder failed ({status}):\n{out}");
    let last = out
        .lines()
        .find(|l| l.starts_with("final: "))
        .unwrap_or_else(|| panic!("no final counters:\n{out}"));
    assert!(
        last.contains(" icmp 3 ") && last.contains(" icmp6 3 "),
        "{last}"
    );
    assert!(out.contains(&format!("mac {MAC}")), "{out}");
}
