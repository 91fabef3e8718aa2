//! A tpa app's config file (`--config FILE`): the `[tcp]`, `[trace]`,
//! `[stats]` and `[metrics]` tables, each read by its own loader, with
//! the `TPA_*` variables over the file. Any other table is refused,
//! naming it and the nearest valid one.

use std::ffi::OsString;
use std::path::Path;

use super::config::OpsConfig;
use crate::tcp::config::nearest::nearest;
use crate::tcp::config::TcpConfig;
use crate::trace::TraceConfig;

/// The tables a tpa config file may hold.
pub const TABLES: [&str; 4] = ["tcp", "trace", "stats", "metrics"];

/// What a config file and the environment set: the TCP knobs, the socket
/// trace and the operability knobs ([`Default`]: each table's defaults,
/// no file nor variable read).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// `[tcp]` and `TPA_TCP_*`.
    pub tcp: TcpConfig,
    /// `[trace]` and `TPA_TRACE*`.
    pub trace: TraceConfig,
    /// `[stats]`, `[metrics]` and `TPA_STATS*`, `TPA_ID`, `TPA_RUN_DIR`,
    /// `TPA_METRICS`.
    pub ops: OpsConfig,
}

impl Settings {
    /// The tables of `text` with the variables among `env` over them.
    ///
    /// ```
    /// use tpa_stages::ops::Settings;
    /// let text = "[tcp]\nnodelay = true\n[trace]\nenabled = true\n[stats]\ninterval_ms = 50\n";
    /// let s = Settings::load(text, [("TPA_STATS_INTERVAL_MS", "20")]).unwrap();
    /// assert!(s.tcp.nodelay && s.trace.enabled);
    /// assert_eq!(s.ops.interval_ms, 20); // the variable wins over the file
    /// let err = Settings::load("[stat]\nid = \"a\"\n", [("", "")]).unwrap_err();
    /// assert_eq!(err, "stat: unknown table; the nearest valid table is stats");
    /// ```
    ///
    /// # Errors
    ///
    /// The first bad table, key or variable, named.
    pub fn load<I, K, V>(text: &str, env: I) -> Result<Settings, String>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let env: Vec<(OsString, OsString)> = env
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        let document: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
        if let Some(unknown) = document.keys().find(|k| !TABLES.contains(&k.as_str())) {
            let near = nearest(unknown, TABLES.iter().copied());
            return Err(format!(
                "{unknown}: unknown table; the nearest valid table is {near}"
            ));
        }
        let pairs = || env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()));
        Ok(Settings {
            tcp: TcpConfig::load(text, pairs()).map_err(|e| e.to_string())?,
            trace: TraceConfig::load(text, pairs()).map_err(|e| e.to_string())?,
            ops: OpsConfig::load(text, pairs()).map_err(|e| e.to_string())?,
        })
    }

    /// The file at `path` (none: no file) with the process's environment
    /// over it; errors start with the file's path.
    ///
    /// # Errors
    ///
    /// The file unreadable, or as [`load`](Self::load).
    pub fn read(path: Option<&Path>) -> Result<Settings, String> {
        let Some(path) = path else {
            return Settings::load("", std::env::vars_os());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Settings::load(&text, std::env::vars_os()).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    #[test]
    fn each_table_reaches_its_loader_and_errors_name_the_key() {
        let text = "[tcp.rto]\nmin = \"50ms\"\n[trace]\nrecords = 64\n[metrics]\nlisten = \"127.0.0.1:9100\"\n";
        let s = Settings::load(text, NO_ENV).unwrap();
        assert_eq!(s.tcp.rto_min_ns, 50_000_000);
        assert_eq!(s.trace.records, 64);
        assert_eq!(s.ops.metrics.unwrap().port(), 9100);
        let e = Settings::load("[trace]\nrecords = 6\n", NO_ENV).unwrap_err();
        assert!(e.starts_with("trace.records"), "{e}");
        let e = Settings::load("[stats]\nmax_socket = 6\n", NO_ENV).unwrap_err();
        assert!(
            e.starts_with("stats.max_socket:") && e.ends_with("stats.max_sockets"),
            "{e}"
        );
        let e = Settings::load("[tcp]\nnodelai = true\n", NO_ENV).unwrap_err();
        assert!(e.contains("tcp.nodelai"), "{e}");
        let e =
            Settings::load("[tcp]\nnodelay = true\n", [("TPA_TCP_NODELAY", "maybe")]).unwrap_err();
        assert!(e.contains("TPA_TCP_NODELAY"), "{e}");
        let e = Settings::load("tcp = 3", NO_ENV).unwrap_err();
        assert!(e.contains("tcp"), "{e}");
        let e = Settings::load("[tcp", NO_ENV).unwrap_err();
        assert!(e.starts_with("not valid TOML"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Settings::read(Some(Path::new("/nonexistent/tpa.toml"))).unwrap_err();
        assert!(e.starts_with("/nonexistent/tpa.toml: cannot read"), "{e}");
    }
}
