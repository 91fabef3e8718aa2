//! The trace's knobs: `trace.enabled`, `trace.records` (per socket, a
//! power of two), where the files go, and the archive's rate.

use std::path::PathBuf;

/// The trace's knobs. [`Default`] is off; [`from_env`](Self::from_env)
/// reads `TPA_TRACE`, `TPA_TRACE_RECORDS`, `TPA_TRACE_ARCHIVE_PER_SEC`
/// and `TPA_RUN_DIR`.
///
/// ```
/// use tpa_stages::trace::TraceConfig;
/// let cfg = TraceConfig::default();
/// assert!(!cfg.enabled);
/// assert!(cfg.records.is_power_of_two());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// Whether connections are traced.
    pub enabled: bool,
    /// Records per socket's ring: a power of two.
    pub records: u32,
    /// The run directory: one file per worker, `archive/` beneath.
    pub dir: PathBuf,
    /// Rings archived per second at most (the rest are counted, not
    /// written).
    pub archive_per_sec: u32,
}

/// Records per ring unless configured: 64 records, 1 KiB, the last few
/// round trips of a busy connection.
pub const DEFAULT_RECORDS: u32 = 64;

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            enabled: false,
            records: DEFAULT_RECORDS,
            dir: default_dir(),
            archive_per_sec: 10,
        }
    }
}

/// `$TPA_RUN_DIR`, else `/run/tpa/<pid>`.
fn default_dir() -> PathBuf {
    match std::env::var_os("TPA_RUN_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(format!("/run/tpa/{}", std::process::id())),
    }
}

impl TraceConfig {
    /// The defaults with the environment's overrides: `TPA_TRACE=1` (or
    /// `0`), `TPA_TRACE_RECORDS=<power of two>`,
    /// `TPA_TRACE_ARCHIVE_PER_SEC=<n>`, `TPA_RUN_DIR=<dir>`.
    ///
    /// # Errors
    ///
    /// A message naming the variable whose value is wrong.
    pub fn from_env() -> Result<TraceConfig, String> {
        let mut cfg = TraceConfig::default();
        if let Ok(v) = std::env::var("TPA_TRACE") {
            cfg.enabled = match v.as_str() {
                "1" | "true" | "on" => true,
                "0" | "false" | "off" => false,
                _ => return Err(format!("TPA_TRACE: {v:?} is not 0 or 1")),
            };
        }
        if let Ok(v) = std::env::var("TPA_TRACE_RECORDS") {
            cfg.records = v
                .parse()
                .ok()
                .filter(|n: &u32| n.is_power_of_two() && *n >= 4)
                .ok_or_else(|| {
                    format!("TPA_TRACE_RECORDS: {v:?} is not a power of two of 4 or more")
                })?;
        }
        if let Ok(v) = std::env::var("TPA_TRACE_ARCHIVE_PER_SEC") {
            cfg.archive_per_sec = v
                .parse()
                .map_err(|_| format!("TPA_TRACE_ARCHIVE_PER_SEC: {v:?} is not a count"))?;
        }
        Ok(cfg)
    }
}
