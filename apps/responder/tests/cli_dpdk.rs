//! The `tpa-responder` command on DPDK, as a user runs it: `--port
//! dpdk:net_tap0 … -- <EAL arguments> --vdev net_tap0,iface=…`, started in
//! a network namespace made here (so `net_tap` creates its interface
//! there), pinged by the kernel over IPv4 and IPv6, stopped with Ctrl-C
//! (SIGINT). Run as root:
//! `cargo test -p tpa-responder --features dpdk --test cli_dpdk`.

#![cfg(feature = "dpdk")]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A bound on waiting for the interface to appear (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);
const MAC: &str = "02:74:70:61:00:43";

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted on drop (with the interfaces in it).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "run as root: the test creates a network namespace and a TAP interface"
        );
        let name = format!("tpa-cli-{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = run(Command::new("ip").arg("-n").arg(&self.0).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn exec(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(argv);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stdin(Stdio::null())
            .output();
        // The responder's DPDK runtime directory (same name as its
        // --file-prefix) is of no use once it has ended.
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

fn ping_ok(ns: &Netns, family: &str, addr: &str) {
    let out = ns
        .exec(&["ping", family, "-c", "3", "-W", "1", addr])
        .stdin(Stdio::null())
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("3 received"),
        "ping {family} {addr} failed:\n{text}"
    );
}

#[test]
fn the_command_serves_a_net_tap_the_kernel_pings() {
    let ns = Netns::new();
    let ifname = format!("tpc{}", std::process::id() % 100_000);
    let prefix = ns.0.clone();
    let vdev = format!("net_tap0,iface={ifname}");
    let child = ns
        .exec(&[
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

    ping_ok(&ns, "-4", "192.0.2.1");
    ping_ok(&ns, "-6", "2001:db8::1");
    let neigh = ns.ip(&["neigh", "show", "dev", &ifname]);
    for addr in ["192.0.2.1 ", "2001:db8::1 "] {
        let entry = neigh
            .lines()
            .find(|l| l.starts_with(addr))
            .unwrap_or_else(|| panic!("no neighbor entry for {addr}:\n{neigh}"));
        assert!(entry.contains(&format!("lladdr {MAC}")), "{entry}");
    }

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
