//! The operability knobs: the `[stats]` and `[metrics]` tables of a tpa
//! config file, the `TPA_STATS*`, `TPA_ID`, `TPA_RUN_DIR` and
//! `TPA_METRICS` variables over them.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::tcp::config::nearest::nearest;

/// Where an instance keeps its files and what it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// Whether the workers publish stats and the control socket is served.
    pub enabled: bool,
    /// The instance's id: its directory under [`run_dir`](Self::run_dir);
    /// `None`: the app's name and the pid (the directory is then removed
    /// when the instance ends cleanly).
    pub id: Option<String>,
    /// The run directory: one directory per instance.
    pub run_dir: PathBuf,
    /// How often each worker publishes, in milliseconds.
    pub interval_ms: u64,
    /// Sockets per worker snapshot at most (the rest are counted).
    pub max_sockets: usize,
    /// Where the Prometheus endpoint listens, if anywhere.
    pub metrics: Option<SocketAddr>,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            enabled: true,
            id: None,
            run_dir: std::env::var_os("TPA_RUN_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/run/tpa")),
            interval_ms: 100,
            max_sockets: 1024,
            metrics: None,
        }
    }
}

/// Each key, in full, with the variable over it.
pub const OPS_KEYS: [(&str, &str); 6] = [
    ("stats.enabled", "TPA_STATS"),
    ("stats.id", "TPA_ID"),
    ("stats.dir", "TPA_RUN_DIR"),
    ("stats.interval_ms", "TPA_STATS_INTERVAL_MS"),
    ("stats.max_sockets", "TPA_STATS_MAX_SOCKETS"),
    ("metrics.listen", "TPA_METRICS"),
];

/// A refused value: the key (and the variable it came from) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfigError(pub String);

impl std::fmt::Display for OpsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpsConfigError {}

/// An id is a file name: letters, digits, `-`, `_`, `.`, not starting with a dot.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl OpsConfig {
    /// The `[stats]` and `[metrics]` tables of `text` (other tables are
    /// left to their owners), then the variables of [`OPS_KEYS`] among
    /// `env` over them.
    ///
    /// ```
    /// use tpa_stages::ops::OpsConfig;
    /// let cfg = OpsConfig::load("[metrics]\nlisten = \"127.0.0.1:9100\"\n", [("TPA_ID", "a")]).unwrap();
    /// assert_eq!(cfg.metrics.unwrap().port(), 9100);
    /// assert_eq!(cfg.id.as_deref(), Some("a"));
    /// let err = OpsConfig::load("[stats]\ninterval = 5\n", [("", "")]).unwrap_err();
    /// assert_eq!(err.to_string(), "stats.interval: unknown key; the nearest valid key is stats.interval_ms");
    /// ```
    ///
    /// # Errors
    ///
    /// The key at fault, and the variable if the value came from one.
    pub fn load<I, K, V>(text: &str, env: I) -> Result<OpsConfig, OpsConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut cfg = OpsConfig::default();
        let file: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            OpsConfigError(format!("not valid TOML: {}", e.message()))
        })?;
        for table in ["stats", "metrics"] {
            match file.get(table) {
                None => {}
                Some(toml::Value::Table(t)) => {
                    for (key, value) in t {
                        let full = format!("{table}.{key}");
                        let shown = match value {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        cfg.set(&full, &shown, value.is_str())
                            .map_err(|why| OpsConfigError(format!("{full}: {why}")))?;
                    }
                }
                Some(_) => {
                    return Err(OpsConfigError(format!(
                        "{table}: a table is expected ([{table}])"
                    )))
                }
            }
        }
        for (name, value) in env {
            let Some(name) = name.as_ref().to_str() else {
                continue;
            };
            let Some(&(key, _)) = OPS_KEYS.iter().find(|(_, v)| *v == name) else {
                if name.starts_with("TPA_STATS_") {
                    let near = nearest(name, OPS_KEYS.iter().map(|(_, v)| *v));
                    return Err(OpsConfigError(format!(
                        "{name}: names no stats key; the nearest valid variable is {near}"
                    )));
                }
                continue;
            };
            let value = value.as_ref().to_str().ok_or_else(|| {
                OpsConfigError(format!(
                    "{key} (from {name}): the value is not valid Unicode"
                ))
            })?;
            cfg.set(key, value, true)
                .map_err(|why| OpsConfigError(format!("{key} (from {name}): {why}")))?;
        }
        Ok(cfg)
    }

    /// The defaults with the process's environment over them.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_env() -> Result<OpsConfig, OpsConfigError> {
        OpsConfig::load("", std::env::vars_os())
    }

    /// Sets `key` (in full) from its text; `string`: it was a TOML string
    /// (or a variable).
    fn set(&mut self, key: &str, value: &str, string: bool) -> Result<(), String> {
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|_| !string || !value.is_empty())
        };
        match key {
            "stats.enabled" => {
                self.enabled = match value {
                    "1" | "true" | "on" => true,
                    "0" | "false" | "off" => false,
                    _ => return Err(format!("{value} is not a switch (true or false)")),
                }
            }
            "stats.id" => {
                if !valid_id(value) {
                    return Err(format!(
                        "{value:?} is not an id (letters, digits, -, _ and ., 64 at most)"
                    ));
                }
                self.id = Some(value.to_string());
            }
            "stats.dir" => {
                if value.is_empty() {
                    return Err("an empty path".into());
                }
                self.run_dir = PathBuf::from(value);
            }
            "stats.interval_ms" => {
                self.interval_ms = number()
                    .filter(|n| (1..=60_000).contains(n))
                    .ok_or_else(|| format!("{value} is not 1 to 60000 (milliseconds)"))?;
            }
            "stats.max_sockets" => {
                self.max_sockets = number()
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("{value} is not a count"))?;
            }
            "metrics.listen" => {
                self.metrics = if value.is_empty() || value == "off" {
                    None
                } else {
                    Some(value.parse().map_err(|_| {
                        format!("{value} is not an address and port (127.0.0.1:9100)")
                    })?)
                };
            }
            _ => {
                let near = nearest(key, OPS_KEYS.iter().map(|(k, _)| *k));
                return Err(format!("unknown key; the nearest valid key is {near}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_variable() {
        let none: [(&str, &str); 0] = [];
        let e = OpsConfig::load("[stats]\ninterval_ms = 0\n", none).unwrap_err();
        assert_eq!(e.0, "stats.interval_ms: 0 is not 1 to 60000 (milliseconds)");
        let e = OpsConfig::load("", [("TPA_METRICS", "nowhere")]).unwrap_err();
        assert!(
            e.0.starts_with("metrics.listen (from TPA_METRICS): nowhere"),
            "{e}"
        );
        let e = OpsConfig::load("", [("TPA_ID", "../x")]).unwrap_err();
        assert!(e.0.starts_with("stats.id (from TPA_ID)"), "{e}");
        let e = OpsConfig::load("", [("TPA_STATS_INTERVAL", "5")]).unwrap_err();
        assert!(e.0.contains("TPA_STATS_INTERVAL_MS"), "{e}");
        let cfg = OpsConfig::load("[stats]\nenabled = false\nmax_sockets = 8\n", none).unwrap();
        assert!(!cfg.enabled);
        assert_eq!(cfg.max_sockets, 8);
    }
}
