//! An instance's run directory, its runtime knobs, its control socket and
//! its workers' publishers.
//!
//! The control socket (`<run dir>/<id>/control.sock`) is served by a small
//! thread of its own that never touches a worker: it reads and sets the
//! [`Knobs`], atomics the workers read when they publish (every
//! `stats.interval_ms`), and calls the log filter's setter itself. What
//! `tpactl` shows of the workers it reads from their stats files, not
//! through the socket, so it works on a dead instance too.
//!
//! The protocol is a line in, lines out, then the server closes:
//! `cfg` (every knob, `key = value`), `cfg KEY`, `cfg KEY VALUE`, `info`;
//! a refused request is answered with one line starting `error: `.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::config::{valid_id, OpsConfig};
use super::file::StatsFile;
use super::meter::WorkerMeter;
use super::snapshot::{PoolSnapshot, WorkerSnapshot, SNAPSHOT_VERSION};
use crate::trace::TraceConfig;
use tpa::pipeline::IterationStats;
use tpa::worker::IdlePolicy;

/// The knobs that may change while an instance runs.
pub struct Knobs {
    /// Whether new connections are traced (`trace`): applied by each
    /// worker at its next publish.
    pub trace: AtomicBool,
    /// How often the workers publish (`stats.interval_ms`).
    pub interval_ms: AtomicU64,
    /// What the workers' loops do with nothing to do (`idle`), once the
    /// app said its loops follow the knob ([`Instance::follow_idle`]):
    /// applied by each worker at its next idle turn after its next
    /// publish.
    pub idle: Mutex<Option<IdlePolicy>>,
    /// Bumped by every change, for the workers' cheap check.
    pub generation: AtomicU64,
}

/// The runtime knobs' names, for `cfg`.
pub const RUNTIME_KNOBS: [&str; 4] = ["trace", "log", "stats.interval_ms", "idle"];

impl Knobs {
    fn new(trace: bool, interval_ms: u64) -> Knobs {
        Knobs {
            trace: AtomicBool::new(trace),
            interval_ms: AtomicU64::new(interval_ms),
            idle: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// Every knob's `key = value`.
    pub fn get(&self, key: &str) -> Result<String, String> {
        match key {
            "trace" => Ok(if self.trace.load(Ordering::Relaxed) {
                "on"
            } else {
                "off"
            }
            .into()),
            "stats.interval_ms" => Ok(self.interval_ms.load(Ordering::Relaxed).to_string()),
            "log" => Ok(super::log::current().unwrap_or_else(|| "(not tpa's)".into())),
            "idle" => Ok(match self.idle_policy() {
                Some(p) => p.to_string(),
                None => "(fixed by the app)".into(),
            }),
            other => Err(unknown(other)),
        }
    }

    /// Sets knob `key` to `value`, checked.
    pub fn set(&self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "trace" => {
                let on = match value {
                    "on" | "1" | "true" => true,
                    "off" | "0" | "false" => false,
                    _ => return Err(format!("trace: {value} is not on or off")),
                };
                self.trace.store(on, Ordering::Relaxed);
            }
            "stats.interval_ms" => {
                let ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=60_000).contains(n))
                    .ok_or_else(|| {
                        format!("stats.interval_ms: {value} is not 1 to 60000 (milliseconds)")
                    })?;
                self.interval_ms.store(ms, Ordering::Relaxed);
            }
            "log" => super::log::set(value).map_err(|e| format!("log: {e}"))?,
            "idle" => {
                let policy: IdlePolicy = value.parse().map_err(|e| format!("idle: {e}"))?;
                let mut idle = self.idle.lock().map_err(|_| "idle: poisoned".to_string())?;
                if idle.is_none() {
                    return Err("idle: this app's loops do not follow the knob".into());
                }
                *idle = Some(policy);
            }
            other => return Err(unknown(other)),
        }
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

impl Knobs {
    /// The idle policy the workers follow, if the app lets it change.
    pub fn idle_policy(&self) -> Option<IdlePolicy> {
        self.idle.lock().ok().and_then(|p| *p)
    }
}

fn unknown(key: &str) -> String {
    let near = crate::tcp::config::nearest::nearest(key, RUNTIME_KNOBS.iter().copied());
    format!(
        "{key}: no such runtime knob; the nearest is {near} (knobs: {})",
        RUNTIME_KNOBS.join(", ")
    )
}

/// What the instance's threads and workers share.
struct Shared {
    id: String,
    dir: PathBuf,
    knobs: Knobs,
    max_sockets: usize,
    pools: Mutex<Vec<Box<dyn Fn() -> PoolSnapshot + Send>>>,
    workers: AtomicU64,
    stop: AtomicBool,
}

/// A running instance: its directory, control socket and Prometheus
/// endpoint. Dropping it stops both threads.
pub struct Instance {
    shared: Arc<Shared>,
    control: Option<JoinHandle<()>>,
    metrics: Option<super::prometheus::MetricsServer>,
    /// Remove the directory at the end (an id made from the pid).
    remove_at_end: bool,
}

impl Instance {
    /// Starts the instance `cfg` describes for app `app` (its id is
    /// `app-<pid>` unless given): makes its directory under the run
    /// directory, clears the files a previous instance with that id left,
    /// serves its control socket and, if asked, its Prometheus endpoint.
    /// `trace` is whether tracing starts on.
    ///
    /// # Errors
    ///
    /// A live instance has the id, or the file system's or the socket's
    /// error, naming the path.
    pub fn start(cfg: &OpsConfig, app: &str, trace: bool) -> Result<Instance, String> {
        let (id, remove_at_end) = match &cfg.id {
            Some(id) => (id.clone(), false),
            None => (format!("{app}-{}", std::process::id()), true),
        };
        if !valid_id(&id) {
            return Err(format!(
                "instance id {id:?}: letters, digits, -, _ and . only"
            ));
        }
        let dir = cfg.run_dir.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let sock = dir.join("control.sock");
        if UnixStream::connect(&sock).is_ok() {
            return Err(format!(
                "instance id {id}: a live instance answers on {}",
                sock.display()
            ));
        }
        // What the last instance with this id left (kept until now for
        // a post-mortem).
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                let stale = p.extension().is_some_and(|x| x == "stats") || p == sock;
                if stale {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        let listener = UnixListener::bind(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
        let shared = Arc::new(Shared {
            id,
            dir,
            knobs: Knobs::new(trace, cfg.interval_ms),
            max_sockets: cfg.max_sockets,
            pools: Mutex::new(Vec::new()),
            workers: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let serving = Arc::clone(&shared);
        let control = std::thread::Builder::new()
            .name("tpa-control".into())
            .spawn(move || serve_control(&listener, &serving))
            .map_err(|e| format!("control thread: {e}"))?;
        let metrics = match cfg.metrics {
            Some(addr) => Some(super::prometheus::MetricsServer::start(addr, &shared.dir)?),
            None => None,
        };
        tracing::debug!(id = %shared.id, dir = %shared.dir.display(), "instance started");
        Ok(Instance {
            shared,
            control: Some(control),
            metrics,
            remove_at_end,
        })
    }

    /// [`start`](Self::start)s the instance `cfg` asks for, unless its
    /// stats are off (`--no-stats`); `None` then, or when it cannot start
    /// (said in the log: the app runs on without).
    pub fn start_if_on(cfg: &OpsConfig, app: &str, trace: bool) -> Option<Instance> {
        if !cfg.enabled {
            return None;
        }
        Instance::start(cfg, app, trace)
            .map_err(|e| tracing::warn!("no stats nor control socket: {e}"))
            .ok()
    }

    /// The socket trace's settings for a worker of this instance: `base`
    /// (`[trace]`, `TPA_TRACE*`), on as the `trace` knob is now, its
    /// files in the instance's directory.
    pub fn trace_config(&self, base: &TraceConfig) -> TraceConfig {
        TraceConfig {
            enabled: self.shared.knobs.trace.load(Ordering::Relaxed),
            dir: self.shared.dir.clone(),
            ..base.clone()
        }
    }

    /// Worker `worker`'s publisher, or `None` (said in the log: the
    /// worker runs on without) when its file cannot be made.
    pub fn publisher_or_warn(&self, worker: u32) -> Option<Publisher> {
        self.publisher(worker)
            .map_err(|e| tracing::warn!("worker {worker} publishes no stats: {e}"))
            .ok()
    }

    /// The instance's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Its directory: stats files, the control socket, traces.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The knobs.
    pub fn knobs(&self) -> &Knobs {
        &self.shared.knobs
    }

    /// Says the workers' loops start with `policy` and follow the `idle`
    /// knob (each through [`Publisher::idle_change`]); before the workers'
    /// publishers are made.
    pub fn follow_idle(&self, policy: IdlePolicy) {
        if let Ok(mut idle) = self.shared.knobs.idle.lock() {
            *idle = Some(policy);
        }
    }

    /// The Prometheus endpoint's address, if it serves one.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr())
    }

    /// Has worker 0 publish a pool (`pool` gives its figures).
    pub fn add_pool(&self, pool: impl Fn() -> PoolSnapshot + Send + 'static) {
        if let Ok(mut pools) = self.shared.pools.lock() {
            pools.push(Box::new(pool));
        }
    }

    /// A publisher for worker `worker`: its stats file, `worker-<n>.stats`.
    ///
    /// # Errors
    ///
    /// Creating the file, naming it.
    pub fn publisher(&self, worker: u32) -> Result<Publisher, String> {
        let path = self.shared.dir.join(format!("worker-{worker}.stats"));
        // Room for the snapshot's fixed part and 3 KiB a socket (about
        // 1.8 KiB of JSON each).
        let capacity = 256 * 1024 + self.shared.max_sockets.saturating_mul(3072);
        let file = StatsFile::create(&path, worker, capacity)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.shared.workers.fetch_add(1, Ordering::Relaxed);
        Ok(Publisher {
            file,
            shared: Arc::clone(&self.shared),
            worker,
            meter: WorkerMeter::new(),
            next_ns: 0,
            seen_generation: u64::MAX,
            trace: self.shared.knobs.trace.load(Ordering::Relaxed),
            idle: self.shared.knobs.idle_policy(),
            idle_change: None,
            buf: Vec::new(),
            snapshot: WorkerSnapshot::default(),
        })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wakes the control thread's accept.
        let _ = UnixStream::connect(self.shared.dir.join("control.sock"));
        if let Some(t) = self.control.take() {
            let _ = t.join();
        }
        self.metrics = None;
        let _ = std::fs::remove_file(self.shared.dir.join("control.sock"));
        if self.remove_at_end {
            // The stats go; traces stay (the directory with them).
            for w in 0..self.shared.workers.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(self.shared.dir.join(format!("worker-{w}.stats")));
            }
            let _ = std::fs::remove_dir(&self.shared.dir);
        }
    }
}

/// Answers control requests until the instance stops.
fn serve_control(listener: &UnixListener, shared: &Shared) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let answer = answer(line.trim(), shared);
        let _ = (&stream).write_all(answer.as_bytes());
    }
}

/// The answer to one request.
fn answer(request: &str, shared: &Shared) -> String {
    let words: Vec<&str> = request.split_whitespace().collect();
    let knobs = &shared.knobs;
    match words.as_slice() {
        ["info"] => format!(
            "id = {}\npid = {}\nworkers = {}\ndir = {}\n",
            shared.id,
            std::process::id(),
            shared.workers.load(Ordering::Relaxed),
            shared.dir.display()
        ),
        ["cfg"] => RUNTIME_KNOBS
            .iter()
            .map(|k| format!("{k} = {}\n", knobs.get(k).unwrap_or_default()))
            .collect(),
        ["cfg", key] => match knobs.get(key) {
            Ok(v) => format!("{key} = {v}\n"),
            Err(e) => format!("error: {e}\n"),
        },
        ["cfg", key, value @ ..] => match knobs.set(key, &value.join(" ")) {
            Ok(()) => format!("{key} = {}\n", knobs.get(key).unwrap_or_default()),
            Err(e) => format!("error: {e}\n"),
        },
        _ => format!("error: {request:?}: expected info, cfg, cfg KEY or cfg KEY VALUE\n"),
    }
}

/// Asks the instance whose directory is `dir` for `request`; its answer.
///
/// # Errors
///
/// Connecting or talking to the socket, naming it.
pub fn request(dir: &Path, request: &str) -> Result<String, String> {
    use std::io::Read;
    let sock = dir.join("control.sock");
    let mut stream = UnixStream::connect(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", sock.display()))?;
    let mut out = String::new();
    stream
        .read_to_string(&mut out)
        .map_err(|e| format!("{}: {e}", sock.display()))?;
    Ok(out)
}

/// What a worker does with its figures: measures its loop every
/// iteration and, every `stats.interval_ms`, publishes a snapshot.
pub struct Publisher {
    file: StatsFile,
    shared: Arc<Shared>,
    worker: u32,
    meter: WorkerMeter,
    next_ns: u64,
    seen_generation: u64,
    trace: bool,
    idle: Option<IdlePolicy>,
    idle_change: Option<IdlePolicy>,
    buf: Vec<u8>,
    snapshot: WorkerSnapshot,
}

/// A knob change a worker applies itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Trace new connections, or stop.
    Trace(bool),
}

impl Publisher {
    /// Counts an iteration that started at `start_ns` (the worker's
    /// clock: the time its pipeline ran at) and did `it`
    /// ([`WorkerMeter::iteration`]); true when a snapshot is due.
    #[inline]
    pub fn iteration(&mut self, start_ns: u64, it: &IterationStats) -> bool {
        self.meter.iteration(start_ns, it);
        start_ns >= self.next_ns
    }

    /// The snapshot to fill (the loop's counters and the pools are
    /// filled by [`publish`](Self::publish)); the caller fills the rest
    /// (`ops::collect`), then calls `publish`.
    pub fn snapshot(&mut self) -> &mut WorkerSnapshot {
        &mut self.snapshot
    }

    /// Publishes the snapshot (`stopped`: the worker's last), schedules
    /// the next one from `now_ns`, and returns the knob change the worker
    /// has to apply, if any.
    pub fn publish(&mut self, now_ns: u64, stopped: bool) -> Option<Change> {
        let knobs = &self.shared.knobs;
        let interval = knobs.interval_ms.load(Ordering::Relaxed).max(1) * 1_000_000;
        self.next_ns = now_ns.saturating_add(interval);
        let s = &mut self.snapshot;
        s.version = SNAPSHOT_VERSION;
        s.instance.clone_from(&self.shared.id);
        s.pid = std::process::id();
        s.worker = self.worker;
        s.unix_ns = unix_ns();
        s.stopped = stopped;
        s.worker_loop = self.meter.counters();
        if self.worker == 0 {
            if let Ok(pools) = self.shared.pools.lock() {
                s.pools = pools.iter().map(|p| p()).collect();
            }
        }
        self.buf.clear();
        if serde_json::to_writer(&mut self.buf, &*s).is_ok() && !self.file.publish(&self.buf) {
            // Too many sockets for the file: the counters without them.
            s.sockets_omitted += s.sockets.len() as u64;
            let sockets = std::mem::take(&mut s.sockets);
            self.buf.clear();
            if serde_json::to_writer(&mut self.buf, &*s).is_ok() {
                self.file.publish(&self.buf);
            }
            s.sockets = sockets;
        }
        let generation = knobs.generation.load(Ordering::Acquire);
        if generation == self.seen_generation {
            return None;
        }
        self.seen_generation = generation;
        let idle = knobs.idle_policy();
        if idle != self.idle {
            self.idle = idle;
            self.idle_change = idle;
        }
        let trace = knobs.trace.load(Ordering::Relaxed);
        (trace != self.trace).then(|| {
            self.trace = trace;
            Change::Trace(trace)
        })
    }

    /// The idle policy the `idle` knob asked for since the last call, for
    /// the worker's [`WorkLoop::idle_change`](tpa::worker::WorkLoop::idle_change).
    #[inline]
    pub fn idle_change(&mut self) -> Option<IdlePolicy> {
        self.idle_change.take()
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Sockets per snapshot at most (`stats.max_sockets`).
    pub fn max_sockets(&self) -> usize {
        self.shared.max_sockets
    }

    /// The stats file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Runs one iteration of a worker's loop over `target` (its pipeline)
/// through `run_at`, at the time `now` reads; with `stats`, measured by
/// that start alone (the meter reads no clock of its own). What the
/// iteration did, and whether a
/// snapshot is due ([`Publisher::iteration`]; never without `stats`).
///
/// ```text
/// let (done, due) = ops::run_metered(self.stats.as_mut(), &mut self.pipeline,
///     |p| p.stats().now_ns(), |p, now| p.run_once_at(now));
/// ```
#[inline]
pub fn run_metered<T>(
    stats: Option<&mut Publisher>,
    target: &mut T,
    now: impl Fn(&T) -> u64,
    run_at: impl FnOnce(&mut T, u64) -> IterationStats,
) -> (IterationStats, bool) {
    let start = now(target);
    let done = run_at(target, start);
    let due = match stats {
        Some(stats) => stats.iteration(start, &done),
        None => false,
    };
    (done, due)
}

/// Now, in nanoseconds since the Unix epoch.
fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_are_checked_and_a_change_reaches_the_workers() {
        let knobs = Knobs::new(false, 100);
        assert_eq!(knobs.get("trace").unwrap(), "off");
        knobs.set("trace", "on").unwrap();
        assert_eq!(knobs.get("trace").unwrap(), "on");
        assert_eq!(knobs.generation.load(Ordering::Relaxed), 1);
        assert!(knobs
            .set("trace", "yes")
            .unwrap_err()
            .contains("not on or off"));
        assert!(knobs.set("stats.interval_ms", "0").is_err());
        let e = knobs.get("trase").unwrap_err();
        assert!(e.contains("the nearest is trace"), "{e}");
        assert_eq!(
            knobs.generation.load(Ordering::Relaxed),
            1,
            "refusals change nothing"
        );
        // The idle policy: only where the app follows it, and checked.
        assert_eq!(knobs.get("idle").unwrap(), "(fixed by the app)");
        assert!(knobs
            .set("idle", "spin")
            .unwrap_err()
            .contains("do not follow"));
        *knobs.idle.lock().unwrap() = Some(IdlePolicy::wait());
        assert_eq!(knobs.get("idle").unwrap(), "wait");
        let e = knobs.set("idle", "wait:x").unwrap_err();
        assert!(e.starts_with("idle: wait:x"), "{e}");
        knobs.set("idle", "wait:~50").unwrap();
        assert_eq!(knobs.get("idle").unwrap(), "wait:~50");
        assert_eq!(knobs.generation.load(Ordering::Relaxed), 2);
    }
}
