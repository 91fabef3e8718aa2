// A generic port, a host sink, an observer of the frames and a burst size.

/// Forwards what it does not handle to the host.
#[pipeline(burst = 8)]
pub struct Bifurcated<P: Port> {
    #[port]
    nic: P,
    #[host]
    kernel: TapPort,
    #[observer]
    capture: PcapWriter,
    classify: FlowClassify,
    reflect: Reflector,
}
