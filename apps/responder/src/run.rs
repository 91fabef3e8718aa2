//! Running the responder as configured: open the port the configuration
//! names (TAP, AF_PACKET or DPDK) and [`serve`] it.

use tpa::buf::{Pool, PoolConfig};
use tpa::worker::StopFlag;

use crate::config::{Config, PortSpec};
#[cfg(feature = "dpdk")]
use crate::dpdk::run_dpdk;
use crate::serve::{open_af_packet, open_tap, serve, Error, Summary};

/// Opens the port `config.port` names and serves it (see [`serve`]). A DPDK
/// port initialises the EAL with `config.eal_args` (once per process) and
/// needs the `dpdk` feature.
pub fn run(config: &Config, stop: &StopFlag, log: impl FnMut(&str)) -> Result<Summary, Error> {
    if config.ips.is_empty() {
        return Err(Error::NoAddress);
    }
    let pool = || {
        Pool::new(PoolConfig {
            name: "responder".into(),
            ..PoolConfig::default()
        })
        .map_err(Error::Pool)
    };
    if config.rx_mode.is_some() && !matches!(config.port, PortSpec::AfPacket(_)) {
        return Err(Error::RxModeWithoutAfPacket);
    }
    match &config.port {
        PortSpec::Dpdk(device) => run_dpdk(device, config, stop, log),
        PortSpec::AfXdp(_) => Err(Error::AfXdpUnsupported),
        _ if !config.eal_args.is_empty() => Err(Error::EalArgsWithoutDpdk),
        PortSpec::Tap(name) => {
            let pool = pool()?;
            let port = open_tap(name, config.mac, pool.clone())?;
            serve(port, config, stop, log).map(|s| s.counting_buffers_of(&pool))
        }
        PortSpec::AfPacket(name) => {
            let pool = pool()?;
            let rx_mode = config.rx_mode.unwrap_or_default();
            let port = open_af_packet(name, config.mac, rx_mode, pool.clone())?;
            serve(port, config, stop, log).map(|s| s.counting_buffers_of(&pool))
        }
    }
}

impl Summary {
    /// Notes how many of `pool`'s buffers are still out (call once the port
    /// and pipeline are dropped).
    fn counting_buffers_of(self, pool: &Pool) -> Summary {
        Summary {
            buffers_not_returned: Some(pool.in_use()),
            ..self
        }
    }
}

/// Without the `dpdk` feature a DPDK port is a clear error.
#[cfg(not(feature = "dpdk"))]
fn run_dpdk(
    device: &str,
    _config: &Config,
    _stop: &StopFlag,
    _log: impl FnMut(&str),
) -> Result<Summary, Error> {
    Err(Error::DpdkUnavailable {
        device: device.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::port::af_packet::RxMode;

    fn config(port: &str) -> Config {
        Config::new(port.parse().unwrap(), vec!["192.0.2.1/24".parse().unwrap()])
    }

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn a_dpdk_port_without_the_feature_says_how_to_get_it() {
        let err = run(&config("dpdk:net_tap0"), &StopFlag::new(), |_| {}).unwrap_err();
        assert!(matches!(err, Error::DpdkUnavailable { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "port dpdk:net_tap0: built without the dpdk feature; rebuild with --features dpdk"
        );
    }

    #[test]
    fn eal_arguments_for_another_kind_of_port_are_refused() {
        let config = Config {
            eal_args: vec!["--no-huge".into()],
            ..config("tap:tpa0")
        };
        let err = run(&config, &StopFlag::new(), |_| {}).unwrap_err();
        assert!(matches!(err, Error::EalArgsWithoutDpdk), "{err:?}");
    }

    #[test]
    fn a_receive_mode_for_another_kind_of_port_is_refused() {
        for port in ["tap:tpa0", "dpdk:net_tap0"] {
            let config = Config {
                rx_mode: Some(RxMode::throughput()),
                ..config(port)
            };
            let err = run(&config, &StopFlag::new(), |_| {}).unwrap_err();
            assert!(
                matches!(err, Error::RxModeWithoutAfPacket),
                "{port}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                "--rx-mode is only for an AF_PACKET port (--port af_packet:<ifname>)"
            );
        }
    }
}
