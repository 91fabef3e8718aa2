//! Why a port could not be opened or driven.

use std::io;

/// A port failure, naming the device and the cause.
#[derive(Debug)]
pub enum PortError {
    /// The device does not exist.
    NoSuchDevice {
        /// The device's name.
        name: String,
    },
    /// The caller lacks the privilege (usually CAP_NET_ADMIN / CAP_NET_RAW).
    PermissionDenied {
        /// The device's name.
        name: String,
        /// The operation refused.
        op: &'static str,
    },
    /// The process lacks privileges the port needs, found before asking
    /// the kernel (which would refuse with a bare EPERM).
    Unprivileged {
        /// The device's name.
        name: String,
        /// What the port needs and what this process lacks.
        what: String,
    },
    /// The device is held by someone else.
    Busy {
        /// The device's name.
        name: String,
    },
    /// A configuration value the device rejected.
    InvalidConfig {
        /// The device's name.
        name: String,
        /// Which value, and what is wrong with it.
        what: String,
    },
    /// Any other operating-system error during `op`.
    Io {
        /// The device's name.
        name: String,
        /// The operation that failed.
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A DPDK call failed.
    Dpdk {
        /// The device's name.
        name: String,
        /// The DPDK call that failed.
        op: &'static str,
        /// The error, as a positive errno value.
        code: i32,
        /// DPDK's description of the code.
        message: String,
    },
}

impl PortError {
    /// Maps an I/O error from `op` on device `name` to the most specific kind.
    pub fn from_io(name: &str, op: &'static str, e: io::Error) -> Self {
        let name = name.to_owned();
        match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => PortError::NoSuchDevice { name },
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::PermissionDenied { name, op },
            Some(libc::EBUSY) => PortError::Busy { name },
            _ => PortError::Io {
                name,
                op,
                source: e,
            },
        }
    }
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortError::NoSuchDevice { name } => write!(f, "{name}: no such device"),
            PortError::PermissionDenied { name, op } => {
                write!(f, "{name}: permission denied during {op} (run as root or grant CAP_NET_ADMIN/CAP_NET_RAW)")
            }
            PortError::Unprivileged { name, what } => write!(f, "{name}: {what}"),
            PortError::Busy { name } => write!(f, "{name}: device busy"),
            PortError::InvalidConfig { name, what } => write!(f, "{name}: {what}"),
            PortError::Io { name, op, source } => write!(f, "{name}: {op} failed: {source}"),
            PortError::Dpdk {
                name,
                op,
                code,
                message,
            } => {
                write!(f, "{name}: {op} failed: {message} (DPDK error {code})")
            }
        }
    }
}

impl std::error::Error for PortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PortError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
