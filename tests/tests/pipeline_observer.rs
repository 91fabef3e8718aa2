//! An `#[observer]` sees every frame crossing the port, both ways, in wire
//! order: received frames before any stage, transmitted frames (replies and
//! frames built in `poll`) once each, also under back-pressure. Checked with
//! a recording observer and with the pcap writer read back by tshark.

mod pipeline_support;

use std::path::Path;

use pipeline_support::*;
use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::pipeline::Observer;
use tpa::port::memory::{End, MemoryPort, MemoryWire, WireConfig};
use tpa::stage::{Cx, Stage, Verdict};
use tpa_stages::pcap::PcapCapture;

/// Which way a frame crossed the port, as an observer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Rx,
    Tx,
}

/// Records what it is shown: direction, time and bytes.
#[derive(Default)]
struct Recorder {
    seen: Vec<(Way, u64, Vec<u8>)>,
}

impl<B: PacketBuf> Observer<B> for Recorder {
    fn on_rx(&mut self, frame: &B, now_ns: u64) {
        self.seen.push((Way::Rx, now_ns, frame.data().to_vec()));
    }
    fn on_tx(&mut self, frame: &B, now_ns: u64) {
        self.seen.push((Way::Tx, now_ns, frame.data().to_vec()));
    }
}

/// Our MAC address; requests come from `PEER`.
const US: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The source address of the frame `Announce` builds.
const ANNOUNCER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];

/// In its first poll, sends one broadcast frame of its own from `ANNOUNCER`.
#[derive(Default)]
struct Announce {
    sent: bool,
}

impl<B: PacketBuf, S> Stage<B, S> for Announce {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        Verdict::Pass(p)
    }
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        if self.sent {
            return;
        }
        let Some(mut b) = cx.alloc() else { return };
        let Ok(frame) = b.append(60) else { return };
        frame.fill(0);
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&ANNOUNCER);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental
        cx.transmit(b);
        self.sent = true;
    }
}

/// A request from `PEER` to `US`, `len` bytes long, filled with `fill`.
fn request(len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; len];
    f[..6].copy_from_slice(&US);
    f[6..12].copy_from_slice(&PEER);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// The reply `MacSwap` makes of `request`.
fn reply(request: &[u8]) -> Vec<u8> {
    let mut f = request.to_vec();
    f[..6].copy_from_slice(&PEER);
    f[6..12].copy_from_slice(&US);
    f
}

#[pipeline(burst = 4)]
struct Recorded {
    port: MemoryPort,
    #[observer]
    observer: Recorder,
    announce: Announce,
    answer: MacSwap,
}

#[test]
fn an_observer_sees_requests_then_replies_then_polled_frames() {
    let (port, mut peer) = wire();
    let mut p = Recorded::new(port, Recorder::default(), Announce::default(), MacSwap);
    let first: Vec<Vec<u8>> = (0..3).map(|i| request(60 + i, i as u8)).collect();
    let second: Vec<Vec<u8>> = (3..5).map(|i| request(60 + i, i as u8)).collect();

    send(&mut peer, &first);
    assert_eq!(p.run_once_at(100).rx, 3);
    send(&mut peer, &second);
    assert_eq!(p.run_once_at(200).rx, 2);
    // An idle iteration shows nothing.
    assert_eq!(p.run_once_at(300).rx, 0);

    let mut expected: Vec<(Way, u64, Vec<u8>)> = Vec::new();
    expected.extend(first.iter().map(|f| (Way::Rx, 100, f.clone())));
    expected.extend(first.iter().map(|f| (Way::Tx, 100, reply(f))));
    let announcement = receive(&mut peer)
        .into_iter()
        .find(|f| f.get(6..12) == Some(&ANNOUNCER[..]))
        .expect("the announcement went out");
    expected.push((Way::Tx, 100, announcement));
    expected.extend(second.iter().map(|f| (Way::Rx, 200, f.clone())));
    expected.extend(second.iter().map(|f| (Way::Tx, 200, reply(f))));
    assert_eq!(p.observer.seen, expected);
    drop(p);
    assert_wire_whole(peer);
}

#[pipeline(burst = 128)]
struct Reflector {
    port: MemoryPort,
    #[observer]
    observer: Recorder,
    answer: Transmit,
}

/// Shows every transmitted frame of `p` that reached `peer`, and checks
/// that the observer saw exactly those, once each and in order.
fn assert_tx_shown_once(p: &Reflector, got: &[Vec<u8>], received: &[Vec<u8>]) {
    let shown = |way: Way| -> Vec<Vec<u8>> {
        let seen = p.observer.seen.iter().filter(|(w, _, _)| *w == way);
        seen.map(|(_, _, f)| f.clone()).collect()
    };
    assert_eq!(shown(Way::Rx), received);
    assert_eq!(p.stats().queue_counters().tx_dropped, 0);
    assert_eq!(shown(Way::Tx), got);
}

#[test]
fn an_early_flush_shows_each_frame_once() {
    // 100 replies in one burst: the 64-frame transmit queue is flushed
    // early, then again at the end of the iteration.
    let (port, mut peer) = wire();
    let mut p = Reflector::new(port, Recorder::default(), Transmit);
    let frames: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 20]).collect();
    send(&mut peer, &frames);
    assert_eq!(p.run_once_at(0).rx, 100);
    let got = receive(&mut peer);
    assert_eq!(got, frames);
    assert_tx_shown_once(&p, &got, &frames);
    drop(p);
    assert_wire_whole(peer);
}

#[test]
fn a_frame_the_port_refuses_is_shown_once_when_first_offered() {
    // The peer's ring holds 8 and the peer does not read for a while: most
    // replies wait in the transmit queue for several iterations.
    let wire = MemoryWire::new(WireConfig {
        ring_size: 8,
        ..WireConfig::default()
    })
    .unwrap();
    let (port, mut peer) = (wire.port(End::A, 0).unwrap(), wire.port(End::B, 0).unwrap());
    let mut p = Reflector::new(port, Recorder::default(), Transmit);
    let frames: Vec<Vec<u8>> = (0..32u8).map(|i| vec![i; 20]).collect();
    for chunk in frames.chunks(8) {
        send(&mut peer, chunk);
        p.run_once_at(0);
    }
    assert_eq!(p.stats().queues().tx_pending(), 24);
    let mut got = receive(&mut peer);
    while p.stats().queues().tx_pending() > 0 {
        p.run_once_at(1);
        got.extend(receive(&mut peer));
    }
    assert_eq!(got, frames);
    assert_tx_shown_once(&p, &got, &frames);
    drop((p, wire));
    assert_wire_whole(peer);
}

#[pipeline]
struct Captured {
    port: MemoryPort,
    #[observer]
    capture: PcapCapture,
    announce: Announce,
    answer: MacSwap,
}

/// Runs tshark over `path`: frame number, source MAC and length per frame.
fn tshark(path: &Path) -> Vec<String> {
    let rows = tpa_tests::tshark::fields(path, &[], &["frame.number", "eth.src", "frame.len"]);
    rows.iter().map(|row| row.join(",")).collect()
}

#[test]
fn a_pcap_observer_captures_both_directions_in_wire_order() {
    let path =
        std::env::temp_dir().join(format!("tpa-pipeline-observer-{}.pcap", std::process::id()));
    let (port, mut peer) = wire();
    let capture = PcapCapture::create(&path).expect("create the capture file");
    let mut p = Captured::new(port, capture, Announce::default(), MacSwap);

    send(&mut peer, &[request(60, 1), request(61, 2)]);
    p.run_once_at(1_000);
    send(&mut peer, &[request(62, 3)]);
    p.run_once_at(2_000);
    assert_eq!(receive(&mut peer).len(), 4);
    assert_eq!(p.capture.stats().written, 7);
    drop(p); // flushes the file
    assert_wire_whole(peer);

    let lines = tshark(&path);
    std::fs::remove_file(&path).expect("remove the capture file");
    assert_eq!(
        lines,
        [
            "1,02:00:00:00:00:02,60",
            "2,02:00:00:00:00:02,61",
            "3,02:00:00:00:00:01,60",
            "4,02:00:00:00:00:01,61",
            "5,02:00:00:00:00:aa,60",
            "6,02:00:00:00:00:02,62",
            "7,02:00:00:00:00:01,62",
        ]
    );
}

/// The stage form still works: a capture as the first stage records the
/// received frames only.
#[pipeline]
struct CapturedAsStage {
    port: MemoryPort,
    capture: PcapCapture,
    answer: MacSwap,
}

#[test]
fn a_pcap_stage_captures_what_reaches_it() {
    let path = std::env::temp_dir().join(format!("tpa-pipeline-stage-{}.pcap", std::process::id()));
    let (port, mut peer) = wire();
    let capture = PcapCapture::create(&path).expect("create the capture file");
    let mut p = CapturedAsStage::new(port, capture, MacSwap);
    send(&mut peer, &[request(60, 1), request(61, 2)]);
    p.run_once_at(1_000);
    assert_eq!(receive(&mut peer).len(), 2);
    drop(p);
    assert_wire_whole(peer);

    let lines = tshark(&path);
    std::fs::remove_file(&path).expect("remove the capture file");
    assert_eq!(lines, ["1,02:00:00:00:00:02,60", "2,02:00:00:00:00:02,61"]);
}

/// Without an observer, `Option<T>` switched off and `NoObserver` change
/// nothing; an `Option` observer switched on records.
#[pipeline]
struct MaybeObserved {
    port: MemoryPort,
    #[observer]
    observer: Option<Recorder>,
    answer: MacSwap,
}

#[test]
fn an_optional_observer_records_only_when_on() {
    for on in [false, true] {
        let (port, mut peer) = wire();
        let mut p = MaybeObserved::new(port, on.then(Recorder::default), MacSwap);
        send(&mut peer, &[request(60, 1)]);
        p.run_once_at(5);
        assert_eq!(receive(&mut peer), [reply(&request(60, 1))]);
        let seen = p.observer.as_ref().map(|t| t.seen.len());
        assert_eq!(seen, on.then_some(2));
        drop(p);
        assert_wire_whole(peer);
    }
}
