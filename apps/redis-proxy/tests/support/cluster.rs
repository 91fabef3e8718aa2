//! A real Redis Cluster for tests: six redis-servers in cluster mode
//! (three masters, one replica each) in a temporary directory, created
//! with `redis-cli --cluster create`, and slot migration step by step.
//! The nodes listen on loopback ports ([`Cluster::start`]), or on the
//! kernel's address of a network namespace's TAP, which tpa's stack
//! reaches from the TAP's other side ([`Cluster::start_in`]). Every
//! process is killed and the directory removed on drop (a failing test
//! first prints the nodes' log tails); the namespace goes last.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tpa_tests::netns::Netns;

use super::client::{text, Client};

/// Six cluster nodes; `ports[i]` is node i's client port.
pub struct Cluster {
    dir: PathBuf,
    children: Vec<Child>,
    /// The nodes' client ports on `host`.
    pub ports: Vec<u16>,
    /// The address every node binds and announces.
    pub host: String,
    /// The namespace the nodes run in (`None`: the caller's).
    ns: Option<Netns>,
    /// `cluster-node-timeout`: how long a silent node takes to be failed.
    node_timeout_ms: u32,
    /// The nodes killed (`kill_master`).
    dead: Mutex<Vec<u16>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for port in &self.ports {
                let log = std::fs::read_to_string(self.dir.join(format!("{port}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!("--- node {port} log, last lines:");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `n` distinct loopback ports free right now (all held open until all
/// are chosen so none repeats), never one this process handed out before
/// (tests run at once in threads; the kernel may offer a port again as
/// soon as it is closed, before the server that is to use it binds it).
pub fn free_ports(n: usize) -> Vec<u16> {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        held.push(listener);
        if !given.contains(&port) {
            given.push(port);
            ports.push(port);
        }
    }
    ports
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    /// Starts six nodes on loopback ports and joins them into a cluster
    /// with one replica per master; returns once every node says
    /// `cluster_state:ok`. `name` tells the temporary directories of
    /// concurrent tests apart.
    pub fn start(name: &str) -> Cluster {
        let mut cluster = Cluster::empty(name, "127.0.0.1", None);
        // Client ports and cluster bus ports, all distinct. A port taken
        // between our choice and redis's bind (by another program) makes
        // that node exit: start again on new ports, a few times.
        for attempt in 1.. {
            let ports = free_ports(12);
            cluster.ports = ports[..6].to_vec();
            match cluster.spawn_nodes(&ports[6..]) {
                Ok(()) => break,
                Err(why) if attempt < 3 => eprintln!("cluster {name}: {why}; new ports"),
                Err(why) => panic!("cluster {name}: {why}"),
            }
        }
        cluster.create();
        cluster
    }

    /// Starts six nodes in `ns` on `host` (an address of the namespace,
    /// which every node binds and announces: the TAP's kernel side for
    /// tpa's stack to reach), ports 7001-7006 (the namespace is the
    /// test's own: nothing else listens there), and joins them as
    /// [`Cluster::start`] does. The cluster owns `ns` from now on.
    pub fn start_in(name: &str, ns: Netns, host: &str) -> Cluster {
        let mut cluster = Cluster::empty(name, host, Some(ns));
        cluster.ports = (7001..=7006).collect();
        let bus: Vec<u16> = (17001..=17006).collect();
        if let Err(why) = cluster.spawn_nodes(&bus) {
            panic!("cluster {name}: {why}");
        }
        cluster.create();
        cluster
    }

    fn empty(name: &str, host: &str, ns: Option<Netns>) -> Cluster {
        let dir =
            std::env::temp_dir().join(format!("tpa-redis-cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Cluster {
            dir,
            children: Vec::new(),
            ports: Vec::new(),
            host: host.to_string(),
            // A namespace's cluster is failed over sooner: 2 s, as much
            // as a node may stall on a busy machine without one.
            node_timeout_ms: if ns.is_some() { 2000 } else { 5000 },
            dead: Mutex::new(Vec::new()),
            ns,
        }
    }

    /// `redis-cli --cluster create` over the six nodes, then waits until
    /// the cluster is whole.
    fn create(&self) {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("{}:{p}", self.host))
            .collect();
        let out = self
            .command("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        self.wait_ok();
    }

    /// The namespace the nodes run in, if not the caller's.
    pub fn ns(&self) -> Option<&Netns> {
        self.ns.as_ref()
    }

    /// Runs `f` in the nodes' namespace (sockets opened there stay there).
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.ns {
            Some(ns) => ns.enter(f),
            None => f(),
        }
    }

    /// `program` to run in the nodes' namespace.
    fn command(&self, program: &str) -> Command {
        match &self.ns {
            Some(ns) => ns.command(&[program]),
            None => Command::new(program),
        }
    }

    /// Starts a redis-server in cluster mode on each of `self.ports`
    /// (`bus[i]` its cluster bus port) and waits until each listens; if
    /// one exits first, kills the others and says why.
    fn spawn_nodes(&mut self, bus: &[u16]) -> Result<(), String> {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        for (i, &port) in self.ports.iter().enumerate() {
            let child = self
                .command("redis-server")
                .args(["--port", &port.to_string(), "--bind", &self.host])
                .args(["--cluster-announce-ip", &self.host])
                .args(["--protected-mode", "no"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &bus[i].to_string()])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", &self.node_timeout_ms.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                // CLUSTER SLOTS names a replica only once its replication
                // offset is not 0: after its first sync (which redis 7
                // delays 5 s, waiting for more replicas) and the first
                // byte of the replication stream (a write, or the
                // master's ping, every 10 s by default).
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--repl-ping-replica-period", "1"])
                .args(["--logfile", &format!("{port}.log")])
                .arg("--dir")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stdin(Stdio::null())
                .spawn()
                .expect("redis-server (Debian package redis-server) must be installed");
            self.children.push(child);
        }
        for i in 0..6 {
            let port = self.ports[i];
            let deadline = Instant::now() + Duration::from_secs(20);
            while self
                .enter(|| std::net::TcpStream::connect((self.host.as_str(), port)))
                .is_err()
            {
                if let Ok(Some(status)) = self.children[i].try_wait() {
                    let log = std::fs::read_to_string(self.dir.join(format!("{port}.log")))
                        .unwrap_or_default();
                    let last = log.lines().last().unwrap_or_default().to_string();
                    for child in &mut self.children {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    self.children.clear();
                    return Err(format!(
                        "redis-server on port {port} exited ({status}): {last}"
                    ));
                }
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {port} never listened"
                );
                sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Waits until every node says `cluster_state:ok`, knows all six, and
    /// sees three masters with slots and three replicas (the replicas'
    /// roles spread by gossip after `--cluster create` returns).
    pub fn wait_ok(&self) {
        for &port in &self.ports {
            wait_until(
                &format!("node {port} cluster_state:ok"),
                Duration::from_secs(30),
                || {
                    let mut client = self.client(port);
                    let info = client.bulk(&["CLUSTER", "INFO"]);
                    if !(info.contains("cluster_state:ok")
                        && info.contains("cluster_known_nodes:6"))
                    {
                        return false;
                    }
                    let nodes = client.bulk(&["CLUSTER", "NODES"]);
                    let replicas = nodes
                        .lines()
                        .filter(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("slave")))
                        .count();
                    masters_in(&nodes).len() == 3 && replicas == 3
                },
            );
        }
    }

    /// A connection to the node at `port` (opened in its namespace).
    pub fn client(&self, port: u16) -> Client {
        self.enter(|| Client::connect_at(&self.host, port))
    }

    /// The node's 40-character id.
    pub fn node_id(&self, port: u16) -> String {
        self.client(port).bulk(&["CLUSTER", "MYID"])
    }

    /// The ports of the masters that serve slots, by CLUSTER NODES on
    /// the first live node.
    pub fn masters(&self) -> Vec<u16> {
        masters_in(&self.client(self.live()[0]).bulk(&["CLUSTER", "NODES"]))
    }

    /// A manual failover: the replica at `replica` takes over its
    /// master's slots (CLUSTER FAILOVER); returns once it says it is a
    /// master and every node's view agrees it serves slots.
    pub fn failover(&self, replica: u16) {
        self.client(replica).ok(&["CLUSTER", "FAILOVER"]);
        for port in self.live() {
            wait_until(
                &format!("node {port} sees {replica} as a master"),
                Duration::from_secs(30),
                || {
                    let nodes = self.client(port).bulk(&["CLUSTER", "NODES"]);
                    masters_in(&nodes).contains(&replica)
                },
            );
        }
    }

    /// The nodes not killed.
    pub fn live(&self) -> Vec<u16> {
        let dead = self.dead.lock().unwrap();
        self.ports
            .iter()
            .copied()
            .filter(|p| !dead.contains(p))
            .collect()
    }

    /// The master that owns `slot` (its slot ranges in CLUSTER NODES on
    /// the first live node; a slot migrating away is still its owner's).
    pub fn owner(&self, slot: u16) -> u16 {
        let nodes = self.client(self.live()[0]).bulk(&["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() <= 8 || !f[2].contains("master") {
                continue;
            }
            let owns = f[8..].iter().any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                    _ => false, // [slot->-id] / [slot-<-id]: migrating
                }
            });
            if owns {
                let port = f[1].split('@').next().unwrap().rsplit(':').next().unwrap();
                return port.parse().unwrap();
            }
        }
        panic!("no master owns slot {slot}: {nodes}")
    }

    /// The port of a replica of the master at `master`, by CLUSTER NODES
    /// on `master`.
    pub fn replica_of(&self, master: u16) -> u16 {
        let id = self.node_id(master);
        let nodes = self.client(master).bulk(&["CLUSTER", "NODES"]);
        nodes
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[2].contains("slave") && f[3] == id)
            .map(|f| {
                let port = f[1].split('@').next().unwrap().rsplit(':').next().unwrap();
                port.parse().unwrap()
            })
            .unwrap_or_else(|| panic!("no replica of {master} in {nodes}"))
    }

    /// The keys in the cluster: the sum of the masters' DBSIZE, read
    /// from each directly.
    pub fn dbsize(&self) -> i64 {
        self.masters()
            .into_iter()
            .map(|m| {
                let reply = text(&self.client(m).call_str(&["DBSIZE"]));
                reply
                    .trim_start_matches(':')
                    .trim_end()
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("DBSIZE of {m}: {reply}"))
            })
            .sum()
    }

    /// Kills the master at `master` (SIGKILL) once its replica has every
    /// write (WAIT), and returns the replica's port once every other node
    /// sees it as a master and says `cluster_state:ok` (the cluster fails
    /// the master over by itself after `cluster-node-timeout`).
    pub fn kill_master(&self, master: u16) -> u16 {
        let replica = self.replica_of(master);
        let acked = text(&self.client(master).call_str(&["WAIT", "1", "5000"]));
        assert_eq!(acked, ":1\r\n", "WAIT on {master}");
        let i = self.ports.iter().position(|&p| p == master).unwrap();
        let pid = self.children[i].id();
        self.dead.lock().unwrap().push(master);
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL {pid}: {status}");
        for port in self.live() {
            wait_until(
                &format!("node {port} sees {replica} as the master after {master} died"),
                Duration::from_secs(30),
                || {
                    let mut client = self.client(port);
                    let nodes = client.bulk(&["CLUSTER", "NODES"]);
                    let info = client.bulk(&["CLUSTER", "INFO"]);
                    masters_in(&nodes).contains(&replica) && info.contains("cluster_state:ok")
                },
            );
        }
        replica
    }

    /// First step of moving `slot` from the master at `from` to the master
    /// at `to`: `to` imports it, `from` migrates it.
    pub fn begin_migration(&self, slot: u16, from: u16, to: u16) {
        let slot = slot.to_string();
        let from_id = self.node_id(from);
        let to_id = self.node_id(to);
        self.client(to)
            .ok(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        self.client(from)
            .ok(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
    }

    /// Moves up to `count` of `slot`'s keys from `from` to `to` with
    /// MIGRATE; returns how many moved.
    pub fn migrate_keys(&self, slot: u16, from: u16, to: u16, count: usize) -> usize {
        let mut source = self.client(from);
        let reply = source.call_str(&[
            "CLUSTER",
            "GETKEYSINSLOT",
            &slot.to_string(),
            &count.to_string(),
        ]);
        let keys: Vec<Vec<u8>> = match super::client::frame(&reply) {
            tpa_redis_proxy::resp::Frame::Array(Some(items)) => items
                .iter()
                .map(|k| match k {
                    tpa_redis_proxy::resp::Frame::Bulk(Some(k)) => k.to_vec(),
                    other => panic!("GETKEYSINSLOT item {other:?}"),
                })
                .collect(),
            other => panic!("GETKEYSINSLOT: {other:?}"),
        };
        if keys.is_empty() {
            return 0;
        }
        let port = to.to_string();
        let mut args: Vec<&[u8]> = vec![
            b"MIGRATE",
            self.host.as_bytes(),
            port.as_bytes(),
            b"",
            b"0",
            b"5000",
            b"KEYS",
        ];
        args.extend(keys.iter().map(|k| k.as_slice()));
        let reply = source.call(&args);
        assert_eq!(text(&reply), "+OK\r\n", "MIGRATE from {from} to {to}");
        keys.len()
    }

    /// Last step: the slot belongs to `to`, told to `to`, `from` and the
    /// other masters (replicas learn it by gossip).
    pub fn finish_migration(&self, slot: u16, from: u16, to: u16) {
        let slot = slot.to_string();
        let to_id = self.node_id(to);
        let mut order = vec![to, from];
        order.extend(
            self.masters()
                .into_iter()
                .filter(|p| *p != to && *p != from),
        );
        for port in order {
            self.client(port)
                .ok(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        }
    }
}

/// The ports of the masters with slots in a CLUSTER NODES text (`id
/// ip:port@bus flags master ping pong epoch link slot...`), sorted.
fn masters_in(nodes: &str) -> Vec<u16> {
    let mut masters: Vec<u16> = nodes
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 8 && f[2].contains("master"))
        .map(|f| {
            let port = f[1].split('@').next().unwrap().rsplit(':').next().unwrap();
            port.parse().unwrap()
        })
        .collect();
    masters.sort_unstable();
    masters
}
