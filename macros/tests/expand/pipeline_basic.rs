// A port and a chain of stages, the default burst.

/// Answers ARP and ICMP echo requests.
#[pipeline]
pub struct Responder {
    port: MemoryPort,
    eth: EthernetIn,
    arp: ArpResponder,
    ip: Ipv4In,
    echo: EchoResponder,
}
