//! A `#[pipeline]` does exactly what the same logic written by hand as one
//! loop does: the same frames out of the port and to the host, in the same
//! order, and the same counters. Random frame sequences (proptest; a failure
//! prints the minimal sequence and the seed to replay it). The generated
//! pipeline also has an `#[observer]`, which must see exactly the frames
//! received and the frames sent, in order.

mod pipeline_support;

use pipeline_support::*;
use proptest::prelude::*;
use tpa::buf::{PacketBuf, PoolBuf};
use tpa::pipeline;
use tpa::pipeline::Observer;
use tpa::port::memory::MemoryPort;
use tpa::port::{Burst, Port};
use tpa::stage::{Counted, Demux, Reason, StageStats};

type ArpDemux = Demux<ArpOrOther, Transmit, (Mark, Host)>;

/// The frames an observer was shown, each way.
#[derive(Default)]
struct Shown {
    rx: Vec<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

impl<B: PacketBuf> Observer<B> for Shown {
    fn on_rx(&mut self, frame: &B, _: u64) {
        self.rx.push(frame.data().to_vec());
    }
    fn on_tx(&mut self, frame: &B, _: u64) {
        self.tx.push(frame.data().to_vec());
    }
}

#[pipeline(burst = 8)]
struct Generated {
    #[port]
    port: MemoryPort,
    #[host]
    host: MemoryPort,
    #[observer]
    shown: Shown,
    first: ByFirstByte,
    mark: Counted<Mark>,
    ticker: Ticker,
    split: ArpDemux,
}

/// Everything observable after a run.
#[derive(Debug, PartialEq)]
struct Outcome {
    sent: Vec<Vec<u8>>,
    to_host: Vec<Vec<u8>>,
    stages: Vec<StageStats>,
    rx: u64,
    tx_sent: u64,
    host_sent: u64,
}

/// The generated pipeline over `bursts` (each sent, then one iteration).
fn run_generated(bursts: &[Vec<Vec<u8>>]) -> Outcome {
    let (port, mut peer) = wire();
    let (host, mut kernel) = wire();
    let split = Demux::new(ArpOrOther, Transmit, (Mark, Host));
    let mut p = Generated::new(
        port,
        host,
        Shown::default(),
        ByFirstByte,
        Counted::new(Mark),
        Ticker::default(),
        split,
    );
    let (mut sent, mut to_host) = (Vec::new(), Vec::new());
    for (i, burst) in bursts.iter().enumerate() {
        send(&mut peer, burst);
        while p.run_once_at(i as u64).rx != 0 {}
        sent.extend(receive(&mut peer));
        to_host.extend(receive(&mut kernel));
    }
    // The `Counted` wrapper saw exactly what the pipeline counted for `mark`.
    assert_eq!(Some(p.mark.stats.clone()), p.stats().stage("mark"));
    // The observer saw every frame received and every frame sent, in order.
    assert_eq!(p.shown.rx, bursts.concat());
    assert_eq!(p.shown.tx, sent);
    let outcome = Outcome {
        sent,
        to_host,
        stages: p.stats().stages().map(|(_, s)| s).collect(),
        rx: p.stats().counters().rx,
        tx_sent: p.stats().queue_counters().tx_sent,
        host_sent: p.stats().queue_counters().host_sent,
    };
    drop(p);
    assert_wire_whole(peer);
    assert_wire_whole(kernel);
    outcome
}

/// The same logic as one hand-written loop, no stages, no macro.
fn run_by_hand(bursts: &[Vec<Vec<u8>>]) -> Outcome {
    let (mut port, mut peer) = wire();
    let (mut host, mut kernel) = wire();
    let mut stats: Vec<StageStats> = vec![StageStats::default(); 4];
    let (mut rx_total, mut tx_sent, mut host_sent) = (0, 0, 0);
    let (mut sent, mut to_host) = (Vec::new(), Vec::new());
    let mut polls: u8 = 0;
    for (i, burst) in bursts.iter().enumerate() {
        send(&mut peer, burst);
        loop {
            let mut rx: Burst<PoolBuf, 8> = Burst::new();
            let n = port.rx_burst(&mut rx);
            rx_total += n as u64;
            let mut tx: Burst<PoolBuf, 64> = Burst::new();
            let mut hq: Burst<PoolBuf, 32> = Burst::new();
            for mut p in rx.drain() {
                // first: by first byte
                match p.data().first() {
                    Some(0) => stats[0].passed += 1,
                    Some(1) => {
                        stats[0].count_drop(Reason::FILTERED);
                        continue;
                    }
                    Some(2) => {
                        stats[0].consumed += 1;
                        continue;
                    }
                    Some(3) => {
                        stats[0].transmitted += 1;
                        tx.push(p);
                        continue;
                    }
                    Some(4) => {
                        stats[0].to_host += 1;
                        hq.push(p);
                        continue;
                    }
                    Some(_) => {
                        stats[0].count_drop(ODD);
                        continue;
                    }
                    None => {
                        stats[0].count_drop(Reason::TOO_SHORT);
                        continue;
                    }
                }
                // mark
                if let Some(b) = p.data_mut().get_mut(1) {
                    *b = b.wrapping_add(1);
                }
                stats[1].passed += 1;
                // ticker
                stats[2].passed += 1;
                // split: ARP transmitted, others marked and to the host
                match p.data().get(12..14) {
                    Some([0x08, 0x06]) => {
                        stats[3].transmitted += 1;
                        tx.push(p);
                    }
                    Some(_) => {
                        if let Some(b) = p.data_mut().get_mut(1) {
                            *b = b.wrapping_add(1);
                        }
                        stats[3].to_host += 1;
                        hq.push(p);
                    }
                    None => stats[3].count_drop(Reason::TOO_SHORT),
                }
            }
            // ticker's poll
            polls = polls.wrapping_add(1);
            let mut tick = port.alloc().expect("buffer");
            tick.extend_from_slice(&[0xee, polls, i as u8]).unwrap();
            tx.push(tick);
            stats[2].originated += 1;
            tx_sent += port.tx_burst(&mut tx) as u64;
            host_sent += host.tx_burst(&mut hq) as u64;
            assert!(tx.is_empty() && hq.is_empty(), "wire full");
            if n == 0 {
                break;
            }
        }
        sent.extend(receive(&mut peer));
        to_host.extend(receive(&mut kernel));
    }
    drop((port, host));
    assert_wire_whole(peer);
    assert_wire_whole(kernel);
    Outcome {
        sent,
        to_host,
        stages: stats,
        rx: rx_total,
        tx_sent,
        host_sent,
    }
}

/// A frame: first byte picks the verdict, bytes 12..14 maybe ARP's EtherType.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (0usize..40, 0u8..7, any::<bool>(), any::<u8>()).prop_map(|(len, first, arp, fill)| {
        let mut f = vec![fill; len];
        if let Some(b) = f.first_mut() {
            *b = first;
        }
        if arp && len >= 14 {
            f[12..14].copy_from_slice(&[0x08, 0x06]);
        }
        f
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn generated_pipeline_matches_hand_written_loop(
        bursts in prop::collection::vec(prop::collection::vec(frame(), 0..40), 1..6)
    ) {
        let generated = run_generated(&bursts);
        let by_hand = run_by_hand(&bursts);
        prop_assert_eq!(generated, by_hand);
    }
}
