//! The EAL arguments of a test that runs a tpa application on a DPDK
//! vdev: no hugepages, no PCI, no shared config files, errors only in the
//! log, the runtime files under a prefix of the test's own.

/// The EAL's arguments for lcore 0 and `vdev` (e.g.
/// `net_tap0,iface=tpa0`), in 256 MB of ordinary memory, with the
/// runtime directory `/var/run/dpdk/<prefix>` (the test removes it).
///
/// ```
/// let args = tpa_tests::eal::vdev_args("net_ring0", "tpa-doc");
/// assert_eq!(args[..2], ["-l", "0"]);
/// assert!(args.windows(2).any(|w| w == ["--vdev", "net_ring0"]));
/// assert_eq!(args.last().map(String::as_str), Some("tpa-doc"));
/// ```
pub fn vdev_args(vdev: &str, prefix: &str) -> Vec<String> {
    [
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "-m",
        "256",
        "--log-level",
        "*:error",
        "--vdev",
        vdev,
        "--file-prefix",
        prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
