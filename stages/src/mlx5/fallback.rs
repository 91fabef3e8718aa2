//! What runs in hardware and what falls back to software, decided from what
//! the port and its driver accepted, and said once in the log.

use std::sync::atomic::{AtomicBool, Ordering};

use tpa::port::PortCaps;

/// Where a job is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// By the NIC.
    Hardware,
    /// By tpa's stages on the CPU.
    Software,
}

/// How the application's traffic is told from the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steering {
    /// The NIC's flow rules steer and mark it; the rest goes to the kernel.
    Hardware {
        /// Rules installed.
        rules: usize,
        /// Whether the port is flow-isolated, so unmatched traffic goes to
        /// the kernel; without it, it arrives at tpa's queues too and the
        /// classify stage hands it to the host.
        isolated: bool,
    },
    /// The driver refused a rule: the port receives everything and tpa's
    /// classify stage must pick out the application's traffic
    /// ([`Bifurcation::classify`](super::Bifurcation::classify)), handing
    /// the rest to the host.
    Software {
        /// The first refusal, as the driver worded it.
        reason: String,
    },
}

/// The offload decisions for one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadPlan {
    /// Verifying IPv4/TCP checksums of received packets.
    pub rx_checksum: Engine,
    /// Filling IPv4/TCP checksums of sent packets.
    pub tx_checksum: Engine,
    /// Segmenting large TCP sends.
    pub tso: Engine,
    /// Flow steering and marking.
    pub steering: Steering,
}

impl OffloadPlan {
    /// Decides from the port's enabled offloads, whether it is flow-isolated
    /// and the rule installation outcome (`Ok(n)`: n rules in; `Err(reason)`:
    /// refused).
    pub fn decide(caps: &PortCaps, isolated: bool, rules: Result<usize, String>) -> OffloadPlan {
        let rx = caps.rx_offloads;
        let tx = caps.tx_offloads;
        let engine = |hw: bool| {
            if hw {
                Engine::Hardware
            } else {
                Engine::Software
            }
        };
        OffloadPlan {
            rx_checksum: engine(rx.ipv4_checksum && rx.tcp_checksum),
            tx_checksum: engine(tx.ipv4_checksum && tx.tcp_checksum),
            tso: engine(tx.tso),
            steering: match rules {
                Ok(rules) => Steering::Hardware { rules, isolated },
                Err(reason) => Steering::Software { reason },
            },
        }
    }

    /// The fallbacks, one line each (empty when all is in hardware).
    pub fn fallbacks(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.steering {
            Steering::Software { reason } => out.push(format!(
                "flow rules refused ({reason}): classifying in software, non-application traffic goes to the host by the exception path"
            )),
            Steering::Hardware { isolated: false, .. } => out.push(
                "port not flow-isolated: non-application traffic reaches tpa and goes to the host by the exception path".into(),
            ),
            Steering::Hardware { isolated: true, .. } => {}
        }
        if self.rx_checksum == Engine::Software {
            out.push(
                "no receive checksum offload: verifying IPv4/TCP checksums in software".into(),
            );
        }
        if self.tx_checksum == Engine::Software {
            out.push(
                "no transmit checksum offload: computing IPv4/TCP checksums in software".into(),
            );
        }
        if self.tso == Engine::Software {
            out.push("no TSO: TCP segments are built at MSS size".into());
        }
        out
    }

    /// Logs [`fallbacks`](Self::fallbacks) as warnings, once per process.
    pub fn warn_once(&self, port: &str) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if WARNED.swap(true, Ordering::Relaxed) {
            return;
        }
        for line in self.fallbacks() {
            tracing::warn!(port, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::port::Offloads;
    use tpa::wire::MacAddr;

    fn caps(offloads: Offloads) -> PortCaps {
        PortCaps {
            name: "test".into(),
            mac: MacAddr::ZERO,
            mtu: 1500,
            queues: 2,
            queue: 0,
            rx_offloads: Offloads {
                tso: false,
                ..offloads
            },
            tx_offloads: offloads,
            rss: true,
            flow_rules: false,
        }
    }

    #[test]
    fn a_vdev_falls_back_on_everything() {
        let plan = OffloadPlan::decide(
            &caps(Offloads::default()),
            false,
            Err("not supported".into()),
        );
        assert_eq!(plan.rx_checksum, Engine::Software);
        assert_eq!(plan.tx_checksum, Engine::Software);
        assert_eq!(plan.tso, Engine::Software);
        assert_eq!(
            plan.steering,
            Steering::Software {
                reason: "not supported".into()
            }
        );
        let lines = plan.fallbacks();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("not supported"));
    }

    #[test]
    fn a_connectx_keeps_everything_in_hardware() {
        let all = Offloads {
            ipv4_checksum: true,
            tcp_checksum: true,
            udp_checksum: true,
            tso: true,
        };
        let plan = OffloadPlan::decide(&caps(all), true, Ok(6));
        assert_eq!(plan.rx_checksum, Engine::Hardware);
        assert_eq!(plan.tx_checksum, Engine::Hardware);
        assert_eq!(plan.tso, Engine::Hardware);
        assert_eq!(
            plan.steering,
            Steering::Hardware {
                rules: 6,
                isolated: true
            }
        );
        assert!(plan.fallbacks().is_empty());
    }

    #[test]
    fn half_an_offload_is_no_offload() {
        let ip_only = Offloads {
            ipv4_checksum: true,
            ..Offloads::default()
        };
        let plan = OffloadPlan::decide(&caps(ip_only), true, Ok(1));
        assert_eq!(plan.tx_checksum, Engine::Software, "TCP checksum missing");
        assert_eq!(plan.fallbacks().len(), 3);
    }

    #[test]
    fn rules_without_isolation_still_need_the_exception_path() {
        let plan = OffloadPlan::decide(&caps(Offloads::default()), false, Ok(2));
        assert_eq!(
            plan.steering,
            Steering::Hardware {
                rules: 2,
                isolated: false
            }
        );
        assert!(plan.fallbacks()[0].contains("not flow-isolated"));
    }
}
