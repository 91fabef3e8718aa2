//! The one DPDK EAL shared by every test of a DPDK test binary, and helpers.
//!
//! DPDK can be initialised once per process, so each binary initialises it
//! on first use with `--no-huge --no-pci` and a per-process file prefix, and
//! every test creates its own uniquely named vdev.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use tpa::buf::BufferPool;
use tpa::port::dpdk::{DeviceConfig, DpdkDevice, Eal, PoolConfig};

/// The EAL arguments of this test process.
pub fn eal_args() -> Vec<String> {
    [
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        // No shared config files (fewer leftovers under /var/run/dpdk).
        "--no-shconf",
        "-m",
        "512",
        "--log-level",
        "lib.eal:warning",
        "--file-prefix",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("tpa-test-{}", std::process::id())])
    .collect()
}

/// The shared EAL, initialised on first call.
pub fn eal() -> &'static Eal {
    tpa_tests::netns::require_root();
    let eal = Eal::init(&eal_args()).unwrap_or_else(|e| panic!("EAL init: {e}"));
    static CLEANUP: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a plain function without captured state.
    CLEANUP.call_once(|| unsafe {
        libc::atexit(remove_runtime_dir);
    });
    eal
}

/// Removes the runtime directory DPDK made for this process's own file
/// prefix (its sockets are of no use once the process ends).
extern "C" fn remove_runtime_dir() {
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/tpa-test-{}", std::process::id()));
}

/// Serialises the tests of a binary: DPDK's control path (vdev creation,
/// device setup) is not meant for concurrent callers.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A vdev name unique in this process: `<driver>_<tag><n>`.
pub fn vdev_name(driver: &str, tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{driver}_{tag}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A small device configuration: `queues` queue pairs, small pools.
pub fn small_config(queues: u16) -> DeviceConfig {
    DeviceConfig {
        queues,
        rx_descriptors: 256,
        tx_descriptors: 256,
        pool: PoolConfig {
            mbufs: 511,
            cache: 32,
            ..PoolConfig::default()
        },
        ..DeviceConfig::default()
    }
}

/// Closes `dev` (its ports must be gone) and asserts that each of its
/// mempools is whole: every mbuf the test, the pipeline or the device's
/// rings held has come back.
#[track_caller]
pub fn close_whole(dev: DpdkDevice) {
    let name = dev.name().to_owned();
    let pools = dev
        .close()
        .unwrap_or_else(|_| panic!("{name}: a port or clone of the device is still alive"));
    assert!(!pools.is_empty(), "{name} has a pool per queue");
    for pool in &pools {
        pool.assert_whole();
    }
}
