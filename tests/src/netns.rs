//! Network namespaces for kernel-interop tests.
//!
//! A [`Netns`] is a fresh, uniquely named network namespace (made with
//! iproute2's `ip netns add`) with its loopback up. Tests build veth pairs in
//! it, move TAP interfaces into it, give the kernel's side addresses, run
//! commands inside it (`ip netns exec`) and open tpa ports inside it from the
//! test thread ([`Netns::enter`]). Dropping it deletes the namespace and so
//! every virtual interface in it, also when the test panics.
//!
//! Names carry the process id and a counter, so tests running in parallel
//! (cargo's default), and several test binaries at once, never collide.
//! Addresses live only inside namespaces the test created.
//!
//! ```no_run
//! use tpa_tests::netns::Netns;
//! let ns = Netns::new("doc");
//! ns.ip(&["link", "add", "veth0", "type", "veth", "peer", "name", "veth1"]);
//! ns.ip(&["addr", "add", "10.0.0.1/24", "dev", "veth1"]);
//! ns.up("veth0");
//! ns.up("veth1");
//! let out = ns.exec(&["ip", "-br", "addr"]);
//! assert!(out.contains("10.0.0.1/24"));
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Panics with an explanation unless the test runs as root: the kernel
/// interop tests need CAP_NET_ADMIN and CAP_NET_RAW and must not pass by
/// skipping.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test creates network namespaces, TAP and veth interfaces and raw \
         sockets: run it as root (e.g. `sudo bash tests/run.sh`)"
    );
}

/// A name unique to this process and call, `<prefix><pid><n>`, at most 15
/// bytes (an interface name's limit) when `prefix` is at most 4 bytes.
pub fn unique_name(prefix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 1_000_000;
    format!("{prefix}{pid:x}x{n}")
}

/// A network namespace that is deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `tpa-<tag>-<pid>-<n>` with `lo` up.
    ///
    /// # Panics
    /// If not root, or `ip netns add` fails.
    pub fn new(tag: &str) -> Netns {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("tpa-{tag}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.up("lo");
        ns
    }

    /// A namespace with a persistent TAP `tpa0` whose kernel side has
    /// 192.0.2.1/24 and 2001:db8::1/64 (tpa's side, which the test
    /// attaches, takes 192.0.2.2 and 2001:db8::2).
    pub fn with_tap(tag: &str) -> Netns {
        Netns::tap_with(tag, &[])
    }

    /// [`with_tap`](Netns::with_tap), with a multi-queue TAP (a queue
    /// per tpa worker).
    pub fn with_multiqueue_tap(tag: &str) -> Netns {
        Netns::tap_with(tag, &["multi_queue"])
    }

    fn tap_with(tag: &str, flags: &[&str]) -> Netns {
        let ns = Netns::new(tag);
        let mut add = vec!["tuntap", "add", "dev", "tpa0", "mode", "tap"];
        add.extend_from_slice(flags);
        ns.ip(&add);
        ns.add_addr("tpa0", "192.0.2.1/24");
        ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "tpa0", "nodad"]);
        ns.up("tpa0");
        ns
    }

    /// A namespace with a veth pair: the kernel's end `vk` has
    /// 192.0.2.1/24 and 2001:db8::1/64 and sends one TCP segment per
    /// packet ([`one_segment_per_packet`](Netns::one_segment_per_packet):
    /// frames a tpa port takes, not 64 KiB GSO units); tpa's end `vt`
    /// (for an AF_PACKET port taking 192.0.2.2 and 2001:db8::2) has no
    /// address and IPv6 off, so the kernel's stack stays off it, and its
    /// own offloads as veth has them (tx checksumming, scatter-gather,
    /// TSO on). Both ends deliver in order
    /// ([`in_order_receive`](Netns::in_order_receive)).
    pub fn with_veth(tag: &str) -> Netns {
        let ns = Netns::new(tag);
        ns.add_veth("vk", "vt");
        ns.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.vt.disable_ipv6=1"]);
        ns.one_segment_per_packet("vk");
        ns.in_order_receive("vk");
        ns.in_order_receive("vt");
        ns.add_addr("vk", "192.0.2.1/24");
        ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "vk", "nodad"]);
        ns.up("vt");
        ns.up("vk");
        ns
    }

    /// Two namespaces joined by a veth pair, for a port beside the
    /// host's kernel (AF_XDP): the host's end `vs` has the kernel's
    /// address 192.0.2.2/24 (which tpa shares), the peer's end `vc`
    /// 192.0.2.1/24, its transmit checksum offload off (an AF_XDP port
    /// gets no checksum state with a frame: the peer must finish its
    /// checksums itself, as a wire would deliver them). Returns (host,
    /// peer), named after `tag` (`tag` and `tag` + `h`).
    pub fn beside_kernel_pair(tag: &str) -> (Netns, Netns) {
        Netns::beside_kernel_pair_with_queues(tag, 1)
    }

    /// [`Netns::beside_kernel_pair`] with `queues` receive and transmit
    /// queues on both ends of the veth pair.
    pub fn beside_kernel_pair_with_queues(tag: &str, queues: u16) -> (Netns, Netns) {
        let peer = Netns::new(tag);
        let host = Netns::new(&format!("{tag}h"));
        let n = queues.to_string();
        #[rustfmt::skip]
        host.ip(&[
            "link", "add", "vs", "numtxqueues", &n, "numrxqueues", &n, "type", "veth",
            "peer", "name", "vc", "numtxqueues", &n, "numrxqueues", &n,
        ]);
        host.ip(&["link", "set", "vc", "netns", peer.name()]);
        host.add_addr("vs", "192.0.2.2/24");
        peer.add_addr("vc", "192.0.2.1/24");
        host.up("vs");
        peer.up("vc");
        peer.exec(&["ethtool", "-K", "vc", "tx", "off"]);
        (host, peer)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>` and returns its standard output.
    ///
    /// # Panics
    /// If the command fails, with its output.
    pub fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Brings interface `dev` up.
    pub fn up(&self, dev: &str) {
        self.ip(&["link", "set", "dev", dev, "up"]);
    }

    /// Adds address `cidr` (e.g. `10.0.0.1/24`) to `dev`.
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
    }

    /// Sets the MAC address of interface `dev`.
    pub fn set_mac(&self, dev: &str, mac: impl std::fmt::Display) {
        self.ip(&["link", "set", "dev", dev, "address", &mac.to_string()]);
    }

    /// Creates a veth pair `a` <-> `b` inside the namespace.
    pub fn add_veth(&self, a: &str, b: &str) {
        self.ip(&["link", "add", "name", a, "type", "veth", "peer", "name", b]);
    }

    /// Moves interface `dev` from the caller's namespace into this one.
    pub fn move_link(&self, dev: &str) {
        run(Command::new("ip").args(["link", "set", "dev", dev, "netns", &self.name]));
    }

    /// Adds a permanent neighbor entry `ip` -> `mac` on `dev`.
    pub fn add_neigh(&self, dev: &str, ip: &str, mac: &str) {
        self.ip(&[
            "neigh",
            "replace",
            ip,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }

    /// The MAC address of `dev`, as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_of(&self, dev: &str) -> String {
        let out = self.ip(&["-br", "link", "show", "dev", dev]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC in `ip -br link` output: {out}"))
            .to_owned()
    }

    /// The command `ip netns exec <ns> <argv…>`, ready to adjust and spawn.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        c
    }

    /// Runs `argv` inside the namespace and returns its standard output.
    ///
    /// # Panics
    /// If it fails, with its output.
    pub fn exec(&self, argv: &[&str]) -> String {
        run(&mut self.command(argv))
    }

    /// Runs `argv` inside the namespace and returns its full outcome, for
    /// commands expected to fail.
    pub fn exec_output(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?} in {}: {e}", self.name))
    }

    /// Starts `argv` inside the namespace with its standard output piped,
    /// and waits until it prints `ready_line` (so a listener is bound before
    /// the test sends to it). The child is killed when the guard drops.
    ///
    /// # Panics
    /// If it exits or closes its output before printing `ready_line`.
    pub fn spawn_until(&self, argv: &[&str], ready_line: &str) -> Background {
        let mut child = self
            .command(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?} in {}: {e}", self.name));
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).expect("read child output");
            if n == 0 {
                let status = child.wait();
                panic!("{argv:?} ended before printing {ready_line:?}: {status:?}");
            }
            if line.trim_end() == ready_line {
                break;
            }
        }
        Background { child, out }
    }

    /// Pings `addr` three times from the namespace (`family`: `-4` or
    /// `-6`).
    ///
    /// # Panics
    /// Unless all three replies come back, with ping's output.
    pub fn ping_ok(&self, family: &str, addr: &str) {
        let out = self.exec_output(&["ping", family, "-c", "3", "-W", "1", addr]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("3 received"),
            "ping {family} {addr} failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Asserts that the kernel's neighbor table maps `addr` on `dev` to
    /// `mac` (as `aa:bb:cc:dd:ee:ff`).
    pub fn assert_neighbor(&self, dev: &str, addr: &str, mac: impl std::fmt::Display) {
        let table = self.ip(&["neigh", "show", "dev", dev]);
        let entry = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(addr))
            .unwrap_or_else(|| panic!("no neighbor entry for {addr} on {dev}:\n{table}"));
        assert!(
            entry.contains(&format!("lladdr {mac}")),
            "{addr} should be at {mac}: {entry}"
        );
    }

    /// Waits until the kernel's IPv6 on `dev` has taken the link up (its
    /// link-local address exists, tentative or not): the kernel ignores
    /// neighbor solicitations on a device whose carrier came up until
    /// then, asynchronously, some milliseconds after (a TAP's carrier comes
    /// up when tpa attaches it: its first solicitation went unanswered and
    /// its first SYN waited a second).
    ///
    /// # Panics
    /// If it takes over 5 s.
    pub fn wait_ipv6_ready(&self, dev: &str) {
        let start = std::time::Instant::now();
        while !self
            .ip(&["-6", "addr", "show", "dev", dev, "scope", "link"])
            .contains("fe80::")
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "{dev} in {}: no IPv6 link-local address after 5 s",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// The value of sysctl `key` (e.g. `net.ipv4.tcp_congestion_control`)
    /// in the namespace.
    pub fn sysctl(&self, key: &str) -> String {
        self.exec(&["sysctl", "-n", key]).trim().to_owned()
    }

    /// Sets sysctl `key` to `value` in the namespace; the error is
    /// sysctl's message (e.g. a value the namespace may not take).
    pub fn try_set_sysctl(&self, key: &str, value: &str) -> Result<(), String> {
        let out = self.exec_output(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Makes `cc` (e.g. `cubic`) the namespace's default TCP congestion
    /// control where the kernel allows it, and says what it was.
    ///
    /// A namespace other than the first may only choose an algorithm in
    /// the machine-wide `net.ipv4.tcp_allowed_congestion_control`; when
    /// `cc` is not in it the default stays (this helper never changes the
    /// root namespace) and the pin must be made per socket, as
    /// tests/src/tcp_peer.py's `--cc` does with `TCP_CONGESTION` (allowed
    /// to root for any available algorithm). The returned [`CcPin`] says
    /// which happened.
    ///
    /// # Panics
    /// If `cc` is not available in the kernel at all.
    pub fn pin_congestion_control(&self, cc: &str) -> CcPin {
        let key = "net.ipv4.tcp_congestion_control";
        let available = self.sysctl("net.ipv4.tcp_available_congestion_control");
        assert!(
            available.split_whitespace().any(|a| a == cc),
            "congestion control {cc} is not available in this kernel: {available}"
        );
        let was = self.sysctl(key);
        let refused = self.try_set_sysctl(key, cc).err();
        let now = self.sysctl(key);
        assert!(
            refused.is_some() || now == cc,
            "{key} is {now} after setting it to {cc}"
        );
        CcPin {
            cc: cc.to_owned(),
            was,
            namespace_default: now,
            refused,
        }
    }

    /// Limits `dev` to one TCP segment per packet (`gso_max_segs 1`): the
    /// kernel's TCP then sends MSS-sized packets through netfilter and the
    /// driver instead of 64 KB GSO units, so a per-packet loss rule drops
    /// single segments and a tpa port receives frames it can take.
    pub fn one_segment_per_packet(&self, dev: &str) {
        self.ip(&["link", "set", "dev", dev, "gso_max_segs", "1"]);
    }

    /// Makes veth `dev` hand what its peer sends to the stack (and to
    /// packet sockets) in the order it was sent, by steering its receive
    /// processing to CPU 0 (`rps_cpus`, Receive Packet Steering).
    ///
    /// Without it a veth reorders: the peer's transmit queues each frame
    /// on the backlog of the CPU that sends it, and the kernel's TCP sends
    /// both from the application's system calls and from the softirq that
    /// takes the receiver's ACKs, often on the other CPU; two CPUs then
    /// drain their backlogs into the receiver at once and the two runs of
    /// segments interleave (a capture showed a run of nine segments
    /// arriving after two sent later). The receiver SACKs above the
    /// holes, and the sending kernel, before it has seen that the path
    /// reorders, retransmits what it believes lost: spurious fast
    /// retransmits, no byte lost. A NIC queue keeps each flow in order;
    /// so does one backlog.
    ///
    /// # Panics
    /// If `dev` has no receive queue 0 or the write fails.
    pub fn in_order_receive(&self, dev: &str) {
        let path = format!("/sys/class/net/{dev}/queues/rx-0/rps_cpus");
        self.exec(&["sh", "-c", &format!("echo 1 > {path}")]);
        let now = self.exec(&["cat", &path]);
        // A mask of CPU 0 alone, in 32-bit groups: `1`, `00000001`,
        // `00000000,00000001`...
        let mask: String = now.trim().chars().filter(|&c| c != ',').collect();
        assert_eq!(
            mask.trim_start_matches('0'),
            "1",
            "{path} in {}: {now}",
            self.name
        );
    }

    /// Runs `f` on the current thread with the thread switched into this
    /// namespace, then switches back (also if `f` panics). Sockets and
    /// devices opened inside `f` stay in the namespace afterwards; this is
    /// how tests open tpa ports on the namespace's interfaces.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let target = File::open(format!("/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("open /run/netns/{}: {e}", self.name));
        let home = File::open("/proc/thread-self/ns/net")
            .unwrap_or_else(|e| panic!("open /proc/thread-self/ns/net: {e}"));
        setns(&target, &self.name);
        struct Back(File);
        impl Drop for Back {
            fn drop(&mut self) {
                setns(&self.0, "the original namespace");
            }
        }
        let _back = Back(home);
        f()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veth pairs and TAP interfaces.
        let res = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .output();
        match res {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("warning: ip netns del {}: {e}", self.name),
        }
    }
}

/// What [`Netns::pin_congestion_control`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcPin {
    /// The algorithm asked for.
    pub cc: String,
    /// The namespace's default before.
    pub was: String,
    /// The namespace's default now.
    pub namespace_default: String,
    /// Why the namespace's default could not be set (sysctl's message),
    /// when it could not: then only a per-socket pin holds.
    pub refused: Option<String>,
}

impl std::fmt::Display for CcPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.refused {
            None => write!(
                f,
                "congestion control: namespace default {} (was {})",
                self.namespace_default, self.was
            ),
            Some(why) => write!(
                f,
                "congestion control: namespace default stays {} ({} is not in the \
                 machine's tcp_allowed_congestion_control: {why}); pinned to {} per socket",
                self.namespace_default, self.cc, self.cc
            ),
        }
    }
}

/// A process started with [`Netns::spawn_until`]; killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Background {
    /// Waits for the process to end and returns the rest of its output.
    ///
    /// # Panics
    /// If it fails.
    pub fn finish(self) -> String {
        let (status, rest) = self.wait_output();
        assert!(
            status.success(),
            "background command failed ({status}): {rest}"
        );
        rest
    }

    /// Waits for the process to end; its exit status and the rest of its
    /// output, for a caller that reports a failure itself.
    pub fn wait_output(mut self) -> (std::process::ExitStatus, String) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.out, &mut rest).expect("read child output");
        let status = self.child.wait().expect("wait for child");
        (status, rest)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setns(ns: &File, what: &str) {
    // SAFETY: setns(2) on a namespace file descriptor we hold open; it only
    // changes the calling thread's network namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert!(
        rc == 0,
        "setns into {what}: {}",
        std::io::Error::last_os_error()
    );
}

/// Runs a command to completion; panics with its output on failure.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
