//! The DPDK port over `net_memif` between two processes (each with its own
//! EAL): the test process is the memif server, a second run of this test
//! binary the client. The client sends numbered frames, the server checks
//! and echoes them, the client checks the echoes. Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_memif`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::process::Command;
use std::time::{Duration, Instant};

use dpdk_common::{close_whole, eal, serial, small_config, vdev_name};
use tpa::buf::PacketBuf;
use tpa::port::dpdk::{DpdkDevice, DpdkPort, Mbuf};
use tpa::port::{Burst, Port};

/// A bound on waiting (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);
/// Frames sent each way.
const FRAMES: u32 = 64;
/// Where the client learns the server's socket.
const SOCKET_ENV: &str = "TPA_TEST_MEMIF_SOCKET";

fn memif(role: &str, socket: &str) -> (DpdkDevice, DpdkPort) {
    let name = vdev_name("net_memif", role);
    let dev = DpdkDevice::create_vdev(
        eal(),
        &name,
        &format!("role={role},id=0,socket={socket}"),
        &small_config(1),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let port = dev.port(0).unwrap();
    (dev, port)
}

fn wait_link(dev: &DpdkDevice) {
    let deadline = Instant::now() + PATIENCE;
    while !dev.link_up().unwrap() {
        assert!(
            Instant::now() < deadline,
            "memif link not up within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn frame(seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64 + seq as usize];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32 ^ seq) as u8;
    }
    f
}

/// Receives `n` frames, in order, each checked against `frame(seq)`.
fn receive_checked(port: &mut DpdkPort, n: u32) -> Vec<Mbuf> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < n as usize {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} frames within {PATIENCE:?}",
            got.len()
        );
        let mut rx: Burst<Mbuf> = Burst::new();
        if port.rx_burst(&mut rx) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for m in rx.drain() {
            let seq = got.len() as u32;
            assert_eq!(m.data(), &frame(seq)[..], "frame {seq}");
            got.push(m);
        }
    }
    got
}

/// Sends all of `pkts`, retrying what the ring did not take.
fn send_all(port: &mut DpdkPort, pkts: Vec<Mbuf>) {
    let deadline = Instant::now() + PATIENCE;
    let mut pkts = pkts.into_iter().peekable();
    let mut tx: Burst<Mbuf> = Burst::new();
    while pkts.peek().is_some() || !tx.is_empty() {
        assert!(
            Instant::now() < deadline,
            "could not send within {PATIENCE:?}"
        );
        while !tx.is_full() {
            match pkts.next() {
                Some(m) => tx.push(m),
                None => break,
            }
        }
        port.tx_burst(&mut tx);
    }
}

#[test]
fn memif_between_two_processes() {
    let _s = serial();
    let socket = format!("/run/tpa-memif-{}.sock", std::process::id());
    let (dev, mut port) = memif("server", &socket);
    let mut client = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "memif_client_process",
            "--nocapture",
        ])
        .env(SOCKET_ENV, &socket)
        .spawn()
        .expect("start the client process");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_link(&dev);
        let got = receive_checked(&mut port, FRAMES);
        send_all(&mut port, got); // echo the very mbufs back
        assert_eq!(
            port.pool().in_use(),
            0,
            "memif copies and frees what it sends"
        );
    }));
    if outcome.is_err() {
        let _ = client.kill();
    }
    let status = client.wait().expect("wait for the client");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(status.success(), "client process failed: {status}");
    drop(port);
    close_whole(dev);
    let _ = std::fs::remove_file(&socket);
}

#[test]
#[ignore = "the peer process of memif_between_two_processes"]
fn memif_client_process() {
    let Ok(socket) = std::env::var(SOCKET_ENV) else {
        return; // run by --include-ignored, not as the peer: nothing to do
    };
    let (dev, mut port) = memif("client", &socket);
    wait_link(&dev);
    let frames: Vec<Mbuf> = (0..FRAMES)
        .map(|seq| {
            let mut m = port.alloc().expect("mbuf");
            let f = frame(seq);
            m.append(f.len()).unwrap().copy_from_slice(&f);
            m
        })
        .collect();
    send_all(&mut port, frames);
    let echoed = receive_checked(&mut port, FRAMES);
    drop(echoed);
    assert_eq!(port.pool().in_use(), 0, "every mbuf is back");
    drop(port);
    close_whole(dev);
}
