//! [`DpdkDevice`]: one DPDK ethdev, configured with a queue pair and a
//! mempool per worker, handing out one [`DpdkPort`] per queue.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{dpdk_error, Eal};
use super::pool::{Mempool, PoolConfig};
use super::port::DpdkPort;
use super::shared::{DeviceInner, PairRings};
use super::steer::{program_reta, query, RssLimits, RssPlan, RSS_HASH_TYPES};
use crate::port::steer::{Handover, SteerGuard, Steering};
use crate::port::{Offloads, PortCaps, PortError};
use crate::wire::MacAddr;

/// How to set a device up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Queue pairs: one per worker. More than one turns RSS on where the
    /// device has it.
    pub queues: u16,
    /// Receive descriptors per queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// Transmit descriptors per queue (adjusted to the device's limits).
    pub tx_descriptors: u16,
    /// The mempool created for each queue.
    pub pool: PoolConfig,
    /// An MTU to set; `None` keeps the device's.
    pub mtu: Option<u16>,
    /// Receive every frame, not only those to the device's MAC.
    pub promiscuous: bool,
    /// Use the checksum, TSO and RSS-hash offloads the device advertises.
    pub offloads: bool,
    /// Put the port in flow isolation mode (`rte_flow_isolate`): only
    /// traffic matching flow rules reaches DPDK; on a bifurcated driver
    /// (mlx5) the kernel keeps the rest. Devices without it log once and
    /// receive everything.
    pub flow_isolation: bool,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            pool: PoolConfig::default(),
            mtu: None,
            promiscuous: false,
            offloads: true,
            flow_isolation: false,
        }
    }
}

/// Device statistics (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped because no receive descriptor or mbuf was free.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Receive mbuf allocation failures (mempool exhaustion).
    pub rx_nombuf: u64,
}

/// A started DPDK device. Cloning shares it; it is stopped and closed (and a
/// vdev it created removed) when the last clone and the last of its
/// [`DpdkPort`]s are gone, or by [`close`](Self::close). Closing frees the
/// packets waiting in its receive queues and, through the driver, the mbufs
/// posted to its descriptors, so every mbuf of its pools is back.
///
/// ```no_run
/// use tpa::port::dpdk::{DeviceConfig, DpdkDevice, Eal};
/// use tpa::port::Port;
/// let eal = Eal::init(&["-l", "0", "--no-huge", "--no-pci", "--file-prefix", "doc"])?;
/// let dev = DpdkDevice::create_vdev(eal, "net_ring_doc", "", &DeviceConfig::default())?;
/// let port = dev.port(0)?;
/// println!("{} mtu {}", port.caps().mac, port.caps().mtu);
/// # Ok::<(), tpa::port::PortError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DpdkDevice {
    inner: Arc<DeviceInner>,
}

/// Makes ring names unique in the process (DPDK names are global).
static NEXT_RING_PAIR: AtomicU32 = AtomicU32::new(0);

impl DpdkDevice {
    /// Sets up the ethdev named `name` (a vdev's name such as `net_ring0`, or
    /// a PCI address such as `0000:3b:00.0`).
    pub fn open(eal: &Eal, name: &str, cfg: &DeviceConfig) -> Result<DpdkDevice, PortError> {
        let port_id = port_by_name(name)?;
        Self::setup(eal, port_id, name.to_owned(), None, cfg, None)
    }

    /// Sets up the first available ethdev; an error when DPDK found none.
    pub fn open_first(eal: &Eal, cfg: &DeviceConfig) -> Result<DpdkDevice, PortError> {
        // SAFETY: the EAL is initialised; the call scans the port table.
        let port_id = unsafe { sys::rte_eth_find_next_owned_by(0, 0) };
        if port_id >= u64::from(sys::RTE_MAX_ETHPORTS) {
            return Err(PortError::Dpdk {
                name: "dpdk".into(),
                op: "rte_eth_dev_count_avail",
                code: libc::ENODEV,
                message: "no DPDK ports: pass EAL a --vdev, or make a NIC available to DPDK".into(),
            });
        }
        let port_id = port_id as u16;
        let name = port_name(port_id);
        Self::setup(eal, port_id, name, None, cfg, None)
    }

    /// Creates the virtual device `name` with driver arguments `args` (e.g.
    /// `net_tap0` with `iface=tpa0`) and sets it up. The vdev is removed again
    /// when the device is dropped.
    pub fn create_vdev(
        eal: &Eal,
        name: &str,
        args: &str,
        cfg: &DeviceConfig,
    ) -> Result<DpdkDevice, PortError> {
        let invalid = |what: &str| PortError::InvalidConfig {
            name: name.to_owned(),
            what: what.to_owned(),
        };
        let cname = CString::new(name).map_err(|_| invalid("name contains NUL"))?;
        let cargs = CString::new(args).map_err(|_| invalid("arguments contain NUL"))?;
        // SAFETY: the EAL is initialised; both strings are valid C strings.
        let rc = unsafe { sys::rte_vdev_init(cname.as_ptr(), cargs.as_ptr()) };
        if rc != 0 {
            // Drivers' probe functions often return a bare -1 and leave the
            // cause in rte_errno; report that rather than "EPERM".
            let code = match (rc, super::rte_errno()) {
                (-1, errno) if errno != 0 => errno,
                _ => rc,
            };
            return Err(dpdk_error(name, "rte_vdev_init", code));
        }
        let port_id = match port_by_name(name) {
            Ok(id) => id,
            Err(e) => {
                // SAFETY: removes the vdev created above.
                unsafe { sys::rte_vdev_uninit(cname.as_ptr()) };
                return Err(e);
            }
        };
        // On failure `setup` closes the port and removes the vdev.
        Self::setup(eal, port_id, name.to_owned(), Some(cname), cfg, None)
    }

    /// Two `net_ring` devices wired to each other like two ports joined by
    /// a cable: what queue *q* of one sends, queue *q* of the other
    /// receives. Their names are `net_ring_<name>a` and `net_ring_<name>b`;
    /// each is set up as `cfg` says (its own pools), and each direction of
    /// each queue pair is its own single-producer, single-consumer ring of
    /// `max(rx_descriptors, tx_descriptors)` rounded up to a power of two
    /// (one slot less usable). The rings are freed when both devices are
    /// gone.
    ///
    /// Close both before checking their pools: a device's receive rings
    /// are drained when it closes, and they may hold the other's mbufs.
    pub fn ring_pair(
        eal: &Eal,
        name: &str,
        cfg: &DeviceConfig,
    ) -> Result<(DpdkDevice, DpdkDevice), PortError> {
        let invalid = |what: String| PortError::InvalidConfig {
            name: format!("net_ring_{name}"),
            what,
        };
        let queues = usize::from(cfg.queues);
        if queues == 0 || queues > sys::RTE_PMD_RING_MAX_RX_RINGS as usize {
            return Err(invalid(format!(
                "{} queue pairs asked, a ring pair has 1 to {}",
                cfg.queues,
                sys::RTE_PMD_RING_MAX_RX_RINGS
            )));
        }
        let size = u32::from(cfg.rx_descriptors.max(cfg.tx_descriptors).max(2)).next_power_of_two();
        let serial = NEXT_RING_PAIR.fetch_add(1, Ordering::Relaxed);
        let mut rings = PairRings(Vec::with_capacity(2 * queues));
        for direction in ["ab", "ba"] {
            for q in 0..queues {
                let ring_name = CString::new(format!("tpa_pair{serial}_{direction}{q}"))
                    .map_err(|_| invalid("ring name contains NUL".into()))?;
                // SAFETY: the EAL is initialised (we hold &Eal); the name
                // is a valid C string, copied.
                let ring = unsafe {
                    sys::rte_ring_create(
                        ring_name.as_ptr(),
                        size,
                        sys::SOCKET_ID_ANY,
                        sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ,
                    )
                };
                match NonNull::new(ring) {
                    Some(ring) => rings.0.push(ring),
                    None => {
                        return Err(dpdk_error(
                            &format!("net_ring_{name}"),
                            "rte_ring_create",
                            super::rte_errno(),
                        ))
                    }
                }
            }
        }
        let raw: Vec<*mut sys::rte_ring> = rings.0.iter().map(|r| r.as_ptr()).collect();
        let (a_to_b, b_to_a) = raw.split_at(queues);
        let rings = Arc::new(rings);
        let end = |suffix: &str, rx: &[*mut sys::rte_ring], tx: &[*mut sys::rte_ring]| {
            let short = CString::new(format!("{name}{suffix}"))
                .map_err(|_| invalid("name contains NUL".into()))?;
            let vdev = format!("net_ring_{name}{suffix}");
            // SAFETY: both arrays hold `queues` live rings; DPDK copies the
            // pointers; the rings outlive the device (it holds `rings`).
            let id = unsafe {
                sys::rte_eth_from_rings(
                    short.as_ptr(),
                    rx.as_ptr(),
                    queues as u32,
                    tx.as_ptr(),
                    queues as u32,
                    eal.socket_id(),
                )
            };
            let port_id = u16::try_from(id)
                .map_err(|_| dpdk_error(&vdev, "rte_eth_from_rings", super::rte_errno()))?;
            let cvdev =
                CString::new(vdev.clone()).map_err(|_| invalid("name contains NUL".into()))?;
            // On failure `setup` closes the port and removes the vdev.
            Self::setup(eal, port_id, vdev, Some(cvdev), cfg, Some(rings.clone()))
        };
        let a = end("a", b_to_a, a_to_b)?;
        let b = end("b", a_to_b, b_to_a)?;
        Ok((a, b))
    }

    fn setup(
        eal: &Eal,
        port_id: u16,
        name: String,
        vdev: Option<CString>,
        cfg: &DeviceConfig,
        rings: Option<Arc<PairRings>>,
    ) -> Result<DpdkDevice, PortError> {
        // A partly set up device is torn down by DeviceInner's Drop.
        let mut inner = DeviceInner {
            port_id,
            name,
            vdev,
            _rings: rings,
            device: std::ptr::null_mut(),
            pools: Vec::new(),
            taken: Vec::new(),
            started: false,
            isolated: false,
            steering: Steering::Unknown,
            tx_multi_seg: false,
            tso_frame_limit: None,
            tso_ipv6: true,
            rss_limits: RssLimits::default(),
            caps: PortCaps {
                name: String::new(),
                mac: MacAddr::ZERO,
                mtu: 0,
                queues: cfg.queues,
                queue: 0,
                rx_offloads: Offloads::default(),
                tx_offloads: Offloads::default(),
                rss: false,
                flow_rules: false,
            },
        };
        inner.caps.name = inner.name.clone();
        inner.configure(eal, cfg)?;
        Ok(DpdkDevice {
            inner: Arc::new(inner),
        })
    }

    /// The port driving queue `queue`, for one worker. Each queue can have one
    /// live port at a time ([`PortError::Busy`] otherwise).
    pub fn port(&self, queue: u16) -> Result<DpdkPort, PortError> {
        let taken =
            self.inner
                .taken
                .get(usize::from(queue))
                .ok_or_else(|| PortError::InvalidConfig {
                    name: self.inner.name.clone(),
                    what: format!(
                        "queue {queue} does not exist (the device has {})",
                        self.inner.taken.len()
                    ),
                })?;
        if taken.swap(true, Ordering::AcqRel) {
            return Err(PortError::Busy {
                name: format!("{} queue {queue}", self.inner.name),
            });
        }
        Ok(DpdkPort::new(self.inner.clone(), queue))
    }

    /// The port of every queue, in queue order, each checking its received
    /// frames against the device's steering in a [`SteerGuard`]: frames
    /// whose flow steers to another queue are counted and handed over to
    /// that queue's port through a [`Handover`] mesh whose inboxes hold
    /// `depth` mbufs each. Where the device's steering is unknown (no RSS
    /// reported) frames are only counted as such, and nothing moves.
    pub fn guarded_ports(&self, depth: usize) -> Result<Vec<SteerGuard<DpdkPort>>, PortError> {
        let queues = self.inner.pools.len() as u16;
        let ports = (0..queues)
            .map(|q| self.port(q))
            .collect::<Result<Vec<_>, _>>()?;
        ports
            .into_iter()
            .zip(Handover::mesh(queues, depth))
            .map(|(port, end)| SteerGuard::new(port, end))
            .collect()
    }

    /// The port of every queue, in queue order, one per worker, guarded so
    /// that each frame reaches the worker its flow belongs to whichever
    /// queue the device put it on ([`SteerGuard`], a [`Handover`] mesh of
    /// `depth` mbufs per inbox):
    ///
    /// - where the device reports its RSS key and table, that steering
    ///   (frames it misplaces, through flow rules or a table changed behind
    ///   tpa's back, are handed over);
    /// - where it does not (`net_tap`: the kernel side chooses the queue of
    ///   each frame with its own hash, or puts a flow's frames on the queue
    ///   that last sent the flow's; a device without RSS: everything on
    ///   queue 0), tpa's symmetric Toeplitz hash
    ///   ([`Steering::Symmetric`]) enforced in software: a frame that lands
    ///   elsewhere than its flow's queue is handed over to that queue's
    ///   worker.
    ///
    /// Either way each port's [`steering`](crate::port::Port::steering)
    /// names the queue a flow is served on, so an active open can pick a
    /// local port whose replies its own worker serves.
    pub fn worker_ports(&self, depth: usize) -> Result<Vec<SteerGuard<DpdkPort>>, PortError> {
        let queues = self.inner.pools.len() as u16;
        let steering = match &self.inner.steering {
            Steering::Unknown => Steering::Symmetric { queues },
            known => known.clone(),
        };
        let ports = (0..queues)
            .map(|q| self.port(q))
            .collect::<Result<Vec<_>, _>>()?;
        ports
            .into_iter()
            .zip(Handover::mesh(queues, depth))
            .map(|(port, end)| SteerGuard::enforcing(port, end, steering.clone()))
            .collect()
    }

    /// Stops and closes the device now (removing a vdev it created) and
    /// returns its mempools, which outlive it: every mbuf the device held in
    /// its rings is back once this returns, so the caller can check that
    /// the pools are whole
    /// ([`BufferPool::assert_whole`](crate::buf::BufferPool::assert_whole)).
    ///
    /// Only the last handle can close: while a clone or one of its
    /// [`DpdkPort`]s lives, the device is handed back unchanged.
    pub fn close(self) -> Result<Vec<Arc<Mempool>>, DpdkDevice> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => {
                let pools = inner.pools.clone();
                drop(inner);
                Ok(pools)
            }
            Err(inner) => Err(DpdkDevice { inner }),
        }
    }

    /// The ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.inner.port_id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Capabilities as enabled (`queue` is 0; each port reports its own).
    pub fn caps(&self) -> &PortCaps {
        &self.inner.caps
    }

    /// The mempool feeding queue `queue`.
    pub fn pool(&self, queue: u16) -> Option<&Mempool> {
        self.inner.pools.get(usize::from(queue)).map(|p| &**p)
    }

    /// The device's counters.
    pub fn stats(&self) -> Result<DeviceStats, PortError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: the port is started; `s` is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_stats_get(self.inner.port_id, &mut s) };
        if rc != 0 {
            return Err(dpdk_error(&self.inner.name, "rte_eth_stats_get", rc));
        }
        Ok(DeviceStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Whether the link is up (without waiting).
    pub fn link_up(&self) -> Result<bool, PortError> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: `link` is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_link_get_nowait(self.inner.port_id, &mut link) };
        if rc != 0 {
            return Err(dpdk_error(&self.inner.name, "rte_eth_link_get_nowait", rc));
        }
        Ok(link.link_status() != 0)
    }

    /// What the driver reports of its RSS (`rte_eth_dev_info`): with
    /// [`RssPlan::new`], whether tpa programs its key and table.
    pub fn rss_limits(&self) -> RssLimits {
        self.inner.rss_limits
    }

    /// Whether the port is in flow isolation mode (see
    /// [`DeviceConfig::flow_isolation`]).
    pub fn flow_isolated(&self) -> bool {
        self.inner.isolated
    }

    pub(crate) fn inner(&self) -> &Arc<DeviceInner> {
        &self.inner
    }
}

impl DeviceInner {
    fn configure(&mut self, eal: &Eal, cfg: &DeviceConfig) -> Result<(), PortError> {
        let port = self.port_id;
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: `info` is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_dev_info_get(port, &mut info) };
        if rc != 0 {
            return Err(dpdk_error(&self.name, "rte_eth_dev_info_get", rc));
        }
        self.device = info.device;
        let max_queues = info.max_rx_queues.min(info.max_tx_queues);
        if cfg.queues == 0 || cfg.queues > max_queues {
            return Err(PortError::InvalidConfig {
                name: self.name.clone(),
                what: format!(
                    "{} queue pairs asked, the device has 1 to {max_queues}",
                    cfg.queues
                ),
            });
        }

        if cfg.flow_isolation {
            self.isolated = self.isolate();
        }

        let mut conf = sys::rte_eth_conf::default();
        let limits = RssLimits::from_info(&info);
        self.rss_limits = limits;
        let rss_hf = info.flow_type_rss_offloads & RSS_HASH_TYPES;
        let rss = cfg.queues > 1 && rss_hf != 0;
        // tpa's key and table where the device takes them; its own (and
        // perhaps an unknown steering) where it does not.
        let plan = if rss {
            RssPlan::new(&limits, cfg.queues)
                .inspect_err(|why| {
                    tracing::info!(device = %self.name, %why, "RSS with the device's own key and table");
                })
                .ok()
        } else {
            None
        };
        // Outlives the configure call, which copies it.
        let mut key = plan.as_ref().map(|p| p.key.clone());
        if rss {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if let Some(key) = key.as_mut() {
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = limits.key_size;
            }
        } else if cfg.queues > 1 {
            tracing::warn!(device = %self.name, "device has no RSS: all traffic arrives on queue 0");
        }
        if cfg.offloads {
            let mut rx = sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM
                | sys::RTE_ETH_RX_OFFLOAD_TCP_CKSUM
                | sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
            if rss {
                rx |= sys::RTE_ETH_RX_OFFLOAD_RSS_HASH;
            }
            conf.rxmode.offloads = rx & info.rx_offload_capa;
            conf.txmode.offloads = (sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM
                | sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM
                | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM
                | sys::RTE_ETH_TX_OFFLOAD_TCP_TSO
                | sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
                & info.tx_offload_capa;
        } else {
            conf.txmode.offloads = sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS & info.tx_offload_capa;
        }
        // SAFETY: `conf` is valid for the call, which copies it.
        let rc = unsafe { sys::rte_eth_dev_configure(port, cfg.queues, cfg.queues, &conf) };
        if rc != 0 {
            return Err(dpdk_error(&self.name, "rte_eth_dev_configure", rc));
        }
        let (mut nb_rx, mut nb_tx) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: both are valid in/out parameters.
        let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut nb_rx, &mut nb_tx) };
        if rc != 0 {
            return Err(dpdk_error(
                &self.name,
                "rte_eth_dev_adjust_nb_rx_tx_desc",
                rc,
            ));
        }
        if let Some(mtu) = cfg.mtu {
            // SAFETY: plain call on a configured port.
            let rc = unsafe { sys::rte_eth_dev_set_mtu(port, mtu) };
            if rc != 0 {
                return Err(dpdk_error(&self.name, "rte_eth_dev_set_mtu", rc));
            }
        }

        // SAFETY: plain query.
        let socket = unsafe { sys::rte_eth_dev_socket_id(port) };
        for q in 0..cfg.queues {
            let pool = Arc::new(Mempool::create(
                eal,
                &format!("p{port}q{q}"),
                &cfg.pool,
                socket,
            )?);
            // SAFETY: the port is configured; NULL rxconf means the device's
            // defaults with the port-level offloads; the pool outlives the
            // queue (dropped after close).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port,
                    q,
                    nb_rx,
                    socket as u32,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(dpdk_error(&self.name, "rte_eth_rx_queue_setup", rc));
            }
            // SAFETY: as above.
            let rc = unsafe {
                sys::rte_eth_tx_queue_setup(port, q, nb_tx, socket as u32, std::ptr::null())
            };
            if rc != 0 {
                return Err(dpdk_error(&self.name, "rte_eth_tx_queue_setup", rc));
            }
            self.pools.push(pool);
            self.taken.push(AtomicBool::new(false));
        }

        // SAFETY: all queues are set up.
        let rc = unsafe { sys::rte_eth_dev_start(port) };
        if rc != 0 {
            return Err(dpdk_error(&self.name, "rte_eth_dev_start", rc));
        }
        self.started = true;
        if cfg.promiscuous {
            // SAFETY: plain call on a started port.
            let rc = unsafe { sys::rte_eth_promiscuous_enable(port) };
            if rc != 0 {
                tracing::warn!(device = %self.name, error = %dpdk_error(&self.name, "rte_eth_promiscuous_enable", rc), "staying non-promiscuous");
            }
        }

        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: `mac` is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_macaddr_get(port, &mut mac) };
        if rc != 0 {
            return Err(dpdk_error(&self.name, "rte_eth_macaddr_get", rc));
        }
        let mut mtu = 0u16;
        // SAFETY: `mtu` is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_dev_get_mtu(port, &mut mtu) };
        if rc != 0 {
            return Err(dpdk_error(&self.name, "rte_eth_dev_get_mtu", rc));
        }
        let rx = conf.rxmode.offloads;
        let tx = conf.txmode.offloads;
        self.tx_multi_seg = tx & sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS != 0;
        self.caps.mac = MacAddr(mac.addr_bytes);
        self.caps.mtu = mtu;
        self.caps.rss = rss;
        if let Some(plan) = &plan {
            // After start: some drivers write a default table when they
            // start.
            if let Err(rc) = program_reta(port, plan) {
                tracing::warn!(device = %self.name, error = %dpdk_error(&self.name, "rte_eth_dev_rss_reta_update", rc), "the device keeps its own redirection table");
            }
        }
        self.steering = query(&self.name, port, cfg.queues, rss, &limits, plan.as_ref());
        self.caps.rx_offloads = Offloads {
            ipv4_checksum: rx & sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM != 0,
            tcp_checksum: rx & sys::RTE_ETH_RX_OFFLOAD_TCP_CKSUM != 0,
            udp_checksum: rx & sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM != 0,
            tso: false,
        };
        self.caps.tx_offloads = Offloads {
            ipv4_checksum: tx & sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM != 0,
            tcp_checksum: tx & sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM != 0,
            udp_checksum: tx & sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM != 0,
            tso: tx & sys::RTE_ETH_TX_OFFLOAD_TCP_TSO != 0
                && tx & sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS != 0,
        };
        // Whether rules are accepted is only known by validating them; see
        // the mlx5 stage in tpa-stages.
        self.caps.flow_rules = false;
        let driver = if info.driver_name.is_null() {
            "?".into()
        } else {
            // SAFETY: a NUL-terminated string owned by the driver.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy()
        };
        self.tso_frame_limit = None;
        self.tso_ipv6 = true;
        if self.caps.tx_offloads.tso && driver == "net_tap" {
            // net_tap cuts TSO packets with librte_gso and refuses (leaves
            // in the caller's burst, for ever) any whose tso_segsz plus
            // l2_len + l3_len + l4_len exceeds the MTU: it takes that sum
            // for an IP length, though it counts the Ethernet header. So
            // its segments are an Ethernet header shorter than the MTU
            // allows (DpdkPort lowers tso_segsz to fit).
            self.tso_frame_limit = Some(mtu);
            // Its librte_gso (22.11) cuts TCP over IPv4 only and passes
            // other TSO packets on whole, longer than the MTU: IPv6 ones
            // are cut in software.
            self.tso_ipv6 = false;
            tracing::info!(device = %self.name, limit = mtu, "net_tap: TSO segments lowered to fit its frame limit, IPv6 ones cut in software");
        }
        tracing::info!(device = %self.name, %driver, queues = cfg.queues, rss, caps = ?self.caps, "DPDK device started");
        Ok(())
    }
}

impl DeviceInner {
    /// Turns flow isolation on (before configuration, as mlx5 requires).
    fn isolate(&self) -> bool {
        let mut err = sys::rte_flow_error::default();
        // SAFETY: the port is not started; `err` is a valid out-parameter.
        let rc = unsafe { sys::rte_flow_isolate(self.port_id, 1, &mut err) };
        if rc == 0 {
            return true;
        }
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            let driver = if err.message.is_null() {
                String::new()
            } else {
                // SAFETY: a NUL-terminated string owned by the driver.
                unsafe { CStr::from_ptr(err.message) }
                    .to_string_lossy()
                    .into_owned()
            };
            tracing::warn!(
                device = %self.name,
                error = %dpdk_error(&self.name, "rte_flow_isolate", rc),
                %driver,
                "no flow isolation: the port receives all traffic and tpa hands what is not its own to the host"
            );
        }
        false
    }
}

fn port_by_name(name: &str) -> Result<u16, PortError> {
    let cname = CString::new(name).map_err(|_| PortError::NoSuchDevice {
        name: name.to_owned(),
    })?;
    let mut id = 0u16;
    // SAFETY: valid C string and out-parameter.
    let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(PortError::NoSuchDevice {
            name: name.to_owned(),
        });
    }
    Ok(id)
}

fn port_name(port_id: u16) -> String {
    let mut buf = [0 as std::ffi::c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: `buf` has RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
    let rc = unsafe { sys::rte_eth_dev_get_name_by_port(port_id, buf.as_mut_ptr()) };
    if rc != 0 {
        return format!("port{port_id}");
    }
    // SAFETY: DPDK wrote a NUL-terminated name into `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
