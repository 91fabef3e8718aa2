//! tpa's XDP program: loaded with aya, attached through a `bpf_link` this
//! process owns, and its maps (tpa's addresses and ports, the sockets,
//! counters) updated at run time.
//!
//! The program (`tpa_xdp.bpf.c`, compiled by clang in `build.rs`) hands
//! tpa the frames of its own flows and passes everything else to the
//! kernel; see the module documentation of [`af_xdp`](super).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aya::maps::{Array, HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::Xdp;
use aya::Ebpf;

use crate::port::PortError;

/// The object file `build.rs` compiled, aligned as aya's ELF parser wants.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);
static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/tpa_xdp.o")));

/// `ports` entry bits (as in the C program).
const PORT_TCP: u8 = 1;
const PORT_UDP: u8 = 2;

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// In the driver (native XDP, `XDP_FLAGS_DRV_MODE`): what AF_XDP is
    /// fast with. An interface whose driver has no XDP support is an error.
    #[default]
    Native,
    /// In the kernel's generic receive path (`XDP_FLAGS_SKB_MODE`): any
    /// interface, slower (every frame is an `sk_buff` first).
    Generic,
}

/// A transport protocol whose ports the program steers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    fn bit(self) -> u8 {
        match self {
            Transport::Tcp => PORT_TCP,
            Transport::Udp => PORT_UDP,
        }
    }
}

/// The program's per-CPU counters, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpCounters {
    /// TCP/UDP frames of tpa's flows handed to tpa.
    pub redirected: u64,
    /// ICMP/ICMPv6 errors about tpa's flows handed to tpa.
    pub redirected_icmp: u64,
    /// Non-first IP fragments of tpa's datagrams handed to tpa.
    pub redirected_fragments: u64,
    /// Frames passed to the kernel.
    pub passed: u64,
    /// Frames of tpa's flows dropped because no tpa socket serves the
    /// queue they arrived on (passing them would have the kernel reset
    /// tpa's connections).
    pub no_socket: u64,
}

struct Maps {
    xsks: XskMap<MapData>,
    addrs4: HashMap<MapData, u32, u8>,
    addrs6: HashMap<MapData, [u8; 16], u8>,
    ports: Array<MapData, u8>,
    config: Array<MapData, [u16; 2]>,
    stats: PerCpuArray<MapData, u64>,
}

struct Loaded {
    maps: Maps,
    /// How many times each (protocol bit, port) was opened and not yet
    /// closed: each worker's socket table opens a listening port.
    opened: BTreeMap<(u8, u16), u32>,
    /// tpa's local ports kept from the kernel's ephemeral ports.
    reserved: Option<super::ReservedPorts>,
    /// The attachment: closing it (on drop, exit, crash or kill -9)
    /// detaches the program.
    _link: OwnedFd,
    /// Keeps the program loaded.
    _ebpf: Ebpf,
}

/// tpa's XDP program attached to one interface, and the maps that say
/// which flows are tpa's. Cloning gives another handle on the same
/// program (the port's queues and the application share it); the program
/// is detached when the last handle is dropped, or when the process ends
/// however it ends (the kernel closes the `bpf_link`).
#[derive(Clone)]
pub struct XdpFilter {
    inner: Arc<Mutex<Loaded>>,
    interface: Arc<str>,
}

impl std::fmt::Debug for XdpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpFilter")
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

fn map_err(name: &str, op: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::InvalidConfig {
        name: name.to_owned(),
        what: format!("{op}: {e}"),
    }
}

impl XdpFilter {
    /// Loads the program and attaches it to `interface` (index
    /// `ifindex`) in `mode`, owned by this process.
    pub(crate) fn attach(interface: &str, ifindex: u32, mode: XdpMode) -> Result<Self, PortError> {
        let mut ebpf = Ebpf::load(&OBJECT.0).map_err(|e| match &e {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EPERM) =>
            {
                PortError::PermissionDenied {
                    name: interface.to_owned(),
                    op: "loading the XDP program (needs CAP_BPF and CAP_NET_ADMIN)",
                }
            }
            _ => map_err(interface, "loading the XDP program", e),
        })?;
        let program: &mut Xdp = ebpf
            .program_mut("tpa_xdp")
            .ok_or_else(|| {
                map_err(
                    interface,
                    "loading the XDP program",
                    "no tpa_xdp in the object",
                )
            })?
            .try_into()
            .map_err(|e| map_err(interface, "loading the XDP program", e))?;
        program
            .load()
            .map_err(|e| map_err(interface, "verifying the XDP program", e))?;
        let prog_fd = program
            .fd()
            .map_err(|e| map_err(interface, "loading the XDP program", e))?
            .as_fd();
        let link =
            link_create(prog_fd, ifindex, mode).map_err(|e| attach_error(interface, mode, e))?;
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name).ok_or_else(|| {
                map_err(
                    interface,
                    "loading the XDP program",
                    format!("no map {name}"),
                )
            })
        };
        let maps = Maps {
            xsks: XskMap::try_from(take(&mut ebpf, "xsks")?)
                .map_err(|e| map_err(interface, "map xsks", e))?,
            addrs4: HashMap::try_from(take(&mut ebpf, "addrs4")?)
                .map_err(|e| map_err(interface, "map addrs4", e))?,
            addrs6: HashMap::try_from(take(&mut ebpf, "addrs6")?)
                .map_err(|e| map_err(interface, "map addrs6", e))?,
            ports: Array::try_from(take(&mut ebpf, "ports")?)
                .map_err(|e| map_err(interface, "map ports", e))?,
            config: Array::try_from(take(&mut ebpf, "config")?)
                .map_err(|e| map_err(interface, "map config", e))?,
            stats: PerCpuArray::try_from(take(&mut ebpf, "stats")?)
                .map_err(|e| map_err(interface, "map stats", e))?,
        };
        Ok(XdpFilter {
            inner: Arc::new(Mutex::new(Loaded {
                maps,
                opened: BTreeMap::new(),
                reserved: None,
                _link: link,
                _ebpf: ebpf,
            })),
            interface: interface.into(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Loaded> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, op: &'static str, e: impl std::fmt::Display) -> PortError {
        map_err(&self.interface, op, e)
    }

    /// Makes `addr` one of tpa's addresses: frames to it are looked at.
    pub fn add_address(&self, addr: IpAddr) -> Result<(), PortError> {
        let mut l = self.lock();
        match addr {
            IpAddr::V4(a) => l
                .maps
                .addrs4
                .insert(u32::from_ne_bytes(a.octets()), 1, 0)
                .map_err(|e| self.err("adding an address", e)),
            IpAddr::V6(a) => l
                .maps
                .addrs6
                .insert(a.octets(), 1, 0)
                .map_err(|e| self.err("adding an address", e)),
        }
    }

    /// Takes frames to `port` of `transport` for tpa (a listening or bound
    /// port), on every address of tpa's. Opens are counted: the port stays
    /// tpa's until [`close_port`](Self::close_port) was called as many
    /// times (each worker's socket table opens a port it listens on).
    pub fn open_port(&self, transport: Transport, port: u16) -> Result<(), PortError> {
        let mut l = self.lock();
        let old = l.maps.ports.get(&u32::from(port), 0).unwrap_or(0);
        l.maps
            .ports
            .set(u32::from(port), old | transport.bit(), 0)
            .map_err(|e| self.err("opening a port", e))?;
        *l.opened.entry((transport.bit(), port)).or_insert(0) += 1;
        Ok(())
    }

    /// Undoes one [`open_port`](Self::open_port): after the last, frames
    /// to `port` of `transport` go to the kernel again.
    pub fn close_port(&self, transport: Transport, port: u16) -> Result<(), PortError> {
        let mut l = self.lock();
        let key = (transport.bit(), port);
        match l.opened.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                return Ok(());
            }
            _ => {
                l.opened.remove(&key);
            }
        }
        let old = l.maps.ports.get(&u32::from(port), 0).unwrap_or(0);
        l.maps
            .ports
            .set(u32::from(port), old & !transport.bit(), 0)
            .map_err(|e| self.err("closing a port", e))
    }

    /// Takes frames to every port of `range` (TCP and UDP) for tpa: its
    /// active-open local ports. An empty range takes none.
    pub fn set_local_port_range(
        &self,
        range: std::ops::RangeInclusive<u16>,
    ) -> Result<(), PortError> {
        let value = if range.is_empty() || *range.start() == 0 {
            [0, 0]
        } else {
            [*range.start(), *range.end()]
        };
        self.lock()
            .maps
            .config
            .set(0, value, 0)
            .map_err(|e| self.err("setting the local port range", e))
    }

    /// Reserves `range` from the kernel's ephemeral ports
    /// ([`ReservedPorts`](super::ReservedPorts)) until the program is
    /// detached.
    pub fn reserve_kernel_ports(
        &self,
        range: std::ops::RangeInclusive<u16>,
    ) -> Result<(), PortError> {
        let mut l = self.lock();
        l.reserved = None; // the previous reservation restored first
        l.reserved = Some(super::ReservedPorts::reserve(range).map_err(|e| {
            PortError::from_io(
                &self.interface,
                "reserving tpa's ports (ip_local_reserved_ports)",
                e,
            )
        })?);
        Ok(())
    }

    /// Steers frames of tpa's flows arriving on `queue` to `socket`.
    pub(crate) fn set_socket(&self, queue: u32, socket: BorrowedFd<'_>) -> Result<(), PortError> {
        self.lock()
            .maps
            .xsks
            .set(queue, socket.as_raw_fd(), 0)
            .map_err(|e| self.err("adding the AF_XDP socket to the XDP program's map", e))
    }

    /// Stops steering frames of `queue` (its socket is closing).
    pub(crate) fn unset_socket(&self, queue: u32) {
        let _ = self.lock().maps.xsks.unset(queue);
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> XdpCounters {
        let l = self.lock();
        let get = |i: u32| {
            l.maps
                .stats
                .get(&i, 0)
                .map(|v| v.iter().sum::<u64>())
                .unwrap_or(0)
        };
        XdpCounters {
            redirected: get(0),
            redirected_icmp: get(1),
            redirected_fragments: get(2),
            passed: get(3),
            no_socket: get(4),
        }
    }

    /// What the program decides for `frame` (an Ethernet frame) arriving
    /// on queue 0, run by the kernel on a copy (`BPF_PROG_TEST_RUN`;
    /// nothing is sent or redirected, the counters count it): for
    /// checking and diagnosing which frames are tpa's.
    pub fn verdict(&self, frame: &[u8]) -> Result<XdpVerdict, PortError> {
        let mut l = self.lock();
        let prog: &mut Xdp = l
            ._ebpf
            .program_mut("tpa_xdp")
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| self.err("running the XDP program", "program not loaded"))?;
        let fd = prog
            .fd()
            .map_err(|e| self.err("running the XDP program", e))?
            .as_fd();
        let code = test_run(fd, frame)
            .map_err(|e| PortError::from_io(&self.interface, "BPF_PROG_TEST_RUN", e))?;
        Ok(match code {
            2 => XdpVerdict::Kernel,
            4 => XdpVerdict::Tpa,
            1 => XdpVerdict::Dropped,
            other => XdpVerdict::Other(other),
        })
    }

    /// The interface the program is attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }
}

/// What tpa's XDP program does with a frame ([`XdpFilter::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpVerdict {
    /// Passed to the kernel (`XDP_PASS`).
    Kernel,
    /// Redirected to tpa's socket (`XDP_REDIRECT`).
    Tpa,
    /// tpa's, but dropped: no tpa socket on the queue (`XDP_DROP`).
    Dropped,
    /// Any other return code.
    Other(u32),
}

/// Runs program `prog` once on a copy of `frame`; its return code.
fn test_run(prog: BorrowedFd<'_>, frame: &[u8]) -> std::io::Result<u32> {
    /// The `test` member of `union bpf_attr` (linux/bpf.h).
    #[repr(C)]
    #[derive(Default)]
    struct TestRun {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        pad: u32,
    }
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    let mut attr = TestRun {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: 1,
        ..TestRun::default()
    };
    // SAFETY: bpf(2) reads `frame` (`data_size_in` bytes, live for the
    // call) and writes `retval` and `duration` back into `attr`; no
    // output buffer is given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRun,
            std::mem::size_of::<TestRun>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(attr.retval)
}

/// Attaches program `prog` to interface `ifindex` with `BPF_LINK_CREATE`:
/// the attachment lives exactly as long as the returned descriptor. (No
/// fallback to the netlink attachment, which would outlive the process.)
fn link_create(prog: BorrowedFd<'_>, ifindex: u32, mode: XdpMode) -> std::io::Result<OwnedFd> {
    /// The `link_create` member of `union bpf_attr` (linux/bpf.h), padded
    /// to the size of the union's other members the kernel may read.
    #[repr(C)]
    struct LinkCreate {
        prog_fd: u32,
        target_ifindex: u32,
        attach_type: u32,
        flags: u32,
        rest: [u64; 8],
    }
    const BPF_LINK_CREATE: libc::c_long = 28;
    const BPF_XDP: u32 = 37;
    const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
    const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
    let attr = LinkCreate {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags: match mode {
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        },
        rest: [0; 8],
    };
    // SAFETY: bpf(2) reads `size_of::<LinkCreate>()` bytes of `attr`, a
    // live, initialised value; it writes nothing back for this command.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_CREATE,
            &attr as *const LinkCreate,
            std::mem::size_of::<LinkCreate>() as u32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Names the cause of a failed attachment.
fn attach_error(interface: &str, mode: XdpMode, e: std::io::Error) -> PortError {
    let name = interface.to_owned();
    let what = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            return PortError::PermissionDenied {
                name,
                op: "attaching the XDP program",
            }
        }
        Some(libc::ENODEV) => return PortError::NoSuchDevice { name },
        Some(libc::EBUSY) | Some(libc::EEXIST) => {
            "another XDP program is attached to the interface (see `ip link show`; detach it first)"
                .to_owned()
        }
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if mode == XdpMode::Native => {
            format!("the driver has no native XDP support ({e}); use XdpMode::Generic")
        }
        _ => format!("attaching the XDP program failed: {e}"),
    };
    PortError::InvalidConfig { name, what }
}
