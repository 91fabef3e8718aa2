//! Serving a DPDK port (feature `dpdk`): the EAL is initialised from the
//! arguments given after `--`, the ethdev is opened by name and the same
//! pipeline as on every other port runs on its queue 0, over mbufs.

use tpa::buf::BufferPool;
use tpa::port::dpdk::{DeviceConfig, DpdkDevice, DpdkPort, Eal};
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;

use crate::config::Config;
use crate::serve::{serve, Error, Summary};

/// Initialises DPDK's EAL with `eal_args` (or takes the EAL this process
/// already initialised with the same arguments), sets up the ethdev named
/// `device` with one queue pair and returns it with the port of that queue.
///
/// `device` is an ethdev name: a vdev created by the EAL arguments
/// (`--vdev net_tap0,iface=tpa0` makes `net_tap0`) or a PCI address. With a
/// `mac` given, the device is made promiscuous so that frames to that
/// address arrive.
///
/// The port may be served from another thread; register that thread with
/// [`Eal::register_thread`] first so its mempool cache is used.
///
/// ```no_run
/// let args: Vec<String> = "-l 0 --no-huge --no-pci --vdev net_ring0"
///     .split(' ')
///     .map(String::from)
///     .collect();
/// let (device, port) = tpa_responder::open_dpdk("net_ring0", None, &args)?;
/// # Ok::<(), tpa_responder::Error>(())
/// ```
pub fn open_dpdk(
    device: &str,
    mac: Option<MacAddr>,
    eal_args: &[String],
) -> Result<(DpdkDevice, DpdkPort), Error> {
    let eal = Eal::init(eal_args).map_err(Error::Port)?;
    open_on(eal, device, mac)
}

/// Sets up `device` on an initialised EAL (see [`open_dpdk`]).
fn open_on(eal: &Eal, device: &str, mac: Option<MacAddr>) -> Result<(DpdkDevice, DpdkPort), Error> {
    let config = DeviceConfig {
        promiscuous: mac.is_some(),
        ..DeviceConfig::default()
    };
    let dev = DpdkDevice::open(eal, device, &config).map_err(Error::Port)?;
    let port = dev.port(0).map_err(Error::Port)?;
    Ok((dev, port))
}

/// Initialises the EAL, registers the calling thread with it (see
/// [`Eal::register_thread`]; a no-op on the thread that initialised it),
/// opens the port and serves it until `stop`.
pub(crate) fn run_dpdk(
    device: &str,
    config: &Config,
    stop: &StopFlag,
    log: impl FnMut(&str),
) -> Result<Summary, Error> {
    let eal = Eal::init(&config.eal_args).map_err(Error::Port)?;
    let _lcore = eal.register_thread().map_err(Error::Port)?;
    let (dev, port) = open_on(eal, device, config.mac)?;
    let summary = serve(port, config, stop, log)?;
    // The port (inside `serve`) is gone; closing the device returns the
    // mbufs its queues held, after which every mbuf must be back.
    let name = dev.name().to_owned();
    let pools = dev
        .close()
        .map_err(|_| Error::Port(tpa::port::PortError::Busy { name }))?;
    for pool in &pools {
        let out = BufferPool::in_use(&**pool);
        if out != 0 {
            return Err(Error::BuffersNotReturned {
                pool: pool.name().to_owned(),
                out,
            });
        }
    }
    Ok(summary)
}
