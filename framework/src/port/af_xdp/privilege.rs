//! What an AF_XDP port needs of the process, checked before asking the
//! kernel, whose refusals are a bare EPERM (or ENOBUFS) from one of
//! several calls.
//!
//! - `CAP_BPF` and `CAP_PERFMON` (or `CAP_SYS_ADMIN`): loading the XDP
//!   program and its maps (the verifier refuses the program's pointer
//!   arithmetic without `CAP_PERFMON`);
//! - `CAP_NET_ADMIN`: the XSKMAP, attaching the program, tpa's ports
//!   reserved from the kernel (`ip_local_reserved_ports`);
//! - `CAP_NET_RAW`: creating AF_XDP sockets;
//! - `CAP_IPC_LOCK`, or a locked-memory limit (`ulimit -l`) that holds the
//!   UMEM: the kernel pins the pool's pages and charges them to the user.
//!
//! Root has them all unless its capabilities were dropped (a container,
//! `capsh --drop`), so the check reads the calling thread's effective
//! capabilities (`CapEff` in `/proc/thread-self/status`), not its uid.

use std::fs;

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Why this process cannot open an AF_XDP port of `umem_len` bytes, or
/// `None` when it can (or when `/proc` does not say, so that the kernel's
/// own answer comes through).
pub(super) fn missing(umem_len: usize) -> Option<String> {
    let status = fs::read_to_string("/proc/thread-self/status").ok()?;
    let effective = cap_eff(&status)?;
    let memlock = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| memlock_limit(&l));
    let lacks = lacking(effective, memlock, umem_len);
    if lacks.is_empty() {
        return None;
    }
    Some(format!(
        "AF_XDP needs root, or the capabilities CAP_BPF and CAP_PERFMON (or \
         CAP_SYS_ADMIN), CAP_NET_ADMIN and CAP_NET_RAW, and CAP_IPC_LOCK or a locked-memory \
         limit (ulimit -l) of at least {umem_len} bytes for the UMEM; this \
         process lacks {}",
        lacks.join(", ")
    ))
}

/// The effective capability set in a `/proc/*/status` text.
fn cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The soft locked-memory limit in a `/proc/*/limits` text, in bytes
/// (`u64::MAX` for unlimited).
fn memlock_limit(limits: &str) -> Option<u64> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max locked memory"))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// What of the port's needs `effective` (a capability mask) and the
/// locked-memory limit leave out.
fn lacking(effective: u64, memlock: Option<u64>, umem_len: usize) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut lacks = Vec::new();
    if !has(CAP_SYS_ADMIN) {
        if !has(CAP_BPF) {
            lacks.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) {
            lacks.push("CAP_PERFMON");
        }
    }
    if !has(CAP_NET_ADMIN) {
        lacks.push("CAP_NET_ADMIN");
    }
    if !has(CAP_NET_RAW) {
        lacks.push("CAP_NET_RAW");
    }
    // Unknown limit: the kernel will say (ENOBUFS at UMEM registration).
    if !has(CAP_IPC_LOCK) && memlock.is_some_and(|m| m < umem_len as u64) {
        lacks.push("CAP_IPC_LOCK (and the locked-memory limit is too small)");
    }
    lacks
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u64 = 0x000001ffffffffff;

    #[test]
    fn the_capability_sets_are_read_from_proc() {
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                      CapEff:\t0000000000003000\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(cap_eff(status), Some(0x3000));
        assert_eq!(cap_eff("Name:\tcat\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(memlock_limit(limits), Some(8 << 20));
        let unlimited =
            "Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(memlock_limit(unlimited), Some(u64::MAX));
        assert_eq!(memlock_limit("Max open files 1024 1024 files\n"), None);
    }

    #[test]
    fn root_lacks_nothing_and_no_capability_lacks_all() {
        assert!(lacking(ROOT, Some(0), 1 << 30).is_empty());
        assert_eq!(
            lacking(0, Some(8 << 20), 16 << 20),
            [
                "CAP_BPF",
                "CAP_PERFMON",
                "CAP_NET_ADMIN",
                "CAP_NET_RAW",
                "CAP_IPC_LOCK (and the locked-memory limit is too small)"
            ]
        );
        // A limit that holds the UMEM does without CAP_IPC_LOCK.
        let net = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW) | (1 << CAP_BPF) | (1 << CAP_PERFMON);
        assert!(lacking(net, Some(32 << 20), 16 << 20).is_empty());
        assert!(lacking(net, None, 16 << 20).is_empty());
        assert_eq!(lacking(net & !(1 << CAP_PERFMON), None, 0), ["CAP_PERFMON"]);
        // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (kernels
        // before 5.8 have neither).
        let old = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW) | (1 << CAP_SYS_ADMIN);
        assert!(lacking(old, Some(u64::MAX), 16 << 20).is_empty());
    }
}
