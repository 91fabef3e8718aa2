//! The trace's knobs: `trace.enabled`, `trace.records` (per socket, a
//! power of two), where the files go, and the archive's rate; read from
//! the `[trace]` table of a tpa config file, the `TPA_TRACE*` variables
//! over it.

use std::path::PathBuf;

/// The trace's knobs. [`Default`] is off; [`load`](Self::load) reads the
/// `[trace]` table of a config file and the variables over it,
/// [`from_env`](Self::from_env) the process's variables alone.
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

/// Each key of the `[trace]` table, with the environment variable that
/// overrides it.
pub const KEYS: [(&str, &str); 4] = [
    ("enabled", "TPA_TRACE"),
    ("records", "TPA_TRACE_RECORDS"),
    ("dir", "TPA_RUN_DIR"),
    ("archive_per_sec", "TPA_TRACE_ARCHIVE_PER_SEC"),
];

/// A refused trace config: the key at fault (`trace.records`), the
/// variable its value came from if it did, and what is wrong.
///
/// ```
/// use tpa_stages::trace::TraceConfig;
/// let err = TraceConfig::from_toml("[trace]\nrecord = 128\n").unwrap_err();
/// assert_eq!(err.key(), Some("trace.record"));
/// assert_eq!(
///     err.to_string(),
///     "trace.record: unknown key; the nearest valid key is trace.records"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfigError {
    key: Option<String>,
    variable: Option<String>,
    message: String,
}

impl TraceConfigError {
    fn at(key: &str, message: String) -> TraceConfigError {
        TraceConfigError {
            key: Some(format!("trace.{key}")),
            variable: None,
            message,
        }
    }

    /// The key at fault, in full (`trace.records`); `None` for a syntax
    /// error or a variable that names no key.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The environment variable the faulty value came from, if it did.
    pub fn variable_name(&self) -> Option<&str> {
        self.variable.as_deref()
    }
}

impl std::fmt::Display for TraceConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.key, &self.variable) {
            (Some(key), Some(variable)) => write!(f, "{key} (from {variable}): ")?,
            (Some(key), None) => write!(f, "{key}: ")?,
            (None, Some(variable)) => write!(f, "{variable}: ")?,
            (None, None) => f.write_str("trace config: ")?,
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TraceConfigError {}

/// A value for a key, from the file or a variable.
enum Given<'a> {
    File(&'a toml::Value),
    Variable(&'a str),
}

impl TraceConfig {
    /// The `[trace]` table of a tpa config file, validated: `enabled`
    /// (a switch), `records` (a power of two, 4 or more), `dir` (a path),
    /// `archive_per_sec` (a count). Keys left out keep their defaults;
    /// other top-level tables are not read here.
    ///
    /// ```
    /// use tpa_stages::trace::TraceConfig;
    /// let cfg = TraceConfig::from_toml(r#"
    ///     [tcp]
    ///     send_queue = "1MiB"
    ///
    ///     [trace]
    ///     enabled = true
    ///     records = 256
    ///     dir = "/run/tpa/proxy"
    /// "#).unwrap();
    /// assert!(cfg.enabled);
    /// assert_eq!(cfg.records, 256);
    /// assert_eq!(cfg.dir, std::path::PathBuf::from("/run/tpa/proxy"));
    /// assert_eq!(cfg.archive_per_sec, TraceConfig::default().archive_per_sec);
    /// ```
    ///
    /// # Errors
    ///
    /// [`TraceConfigError`], naming the key.
    pub fn from_toml(text: &str) -> Result<TraceConfig, TraceConfigError> {
        TraceConfig::load(text, std::iter::empty::<(&str, &str)>())
    }

    /// The `[trace]` table of `text`, then the variables of [`KEYS`] among
    /// `env` over it (`std::env::vars_os()` in an application; tests pass
    /// their own pairs): `TPA_TRACE=1` (or `0`, `true`, `false`, `on`,
    /// `off`), `TPA_TRACE_RECORDS`, `TPA_TRACE_ARCHIVE_PER_SEC`,
    /// `TPA_RUN_DIR`. Another `TPA_TRACE_*` variable is refused with the
    /// nearest valid one.
    ///
    /// ```
    /// use tpa_stages::trace::TraceConfig;
    /// let text = "[trace]\nenabled = true\nrecords = 256\n";
    /// let cfg = TraceConfig::load(text, [("TPA_TRACE_RECORDS", "1024")]).unwrap();
    /// assert!(cfg.enabled);
    /// assert_eq!(cfg.records, 1024); // the variable wins over the file
    /// let err = TraceConfig::load("", [("TPA_TRACE_RECORDS", "6")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "trace.records (from TPA_TRACE_RECORDS): 6 is not a power of two of 4 or more"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`TraceConfigError`], naming the key (and the variable).
    pub fn load<I, K, V>(text: &str, env: I) -> Result<TraceConfig, TraceConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut cfg = TraceConfig::default();
        let file: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| TraceConfigError {
                key: None,
                variable: None,
                message: format!("not valid TOML: {}", e.message()),
            })?;
        match file.get("trace") {
            None => {}
            Some(toml::Value::Table(table)) => {
                for (key, value) in table {
                    cfg.set(key, Given::File(value))?;
                }
            }
            Some(_) => {
                return Err(TraceConfigError {
                    key: Some("trace".to_string()),
                    variable: None,
                    message: "a table is expected ([trace])".to_string(),
                })
            }
        }
        for (name, value) in env {
            let Some(name) = name.as_ref().to_str() else {
                continue;
            };
            let Some(&(key, _)) = KEYS.iter().find(|(_, v)| *v == name) else {
                if name.starts_with("TPA_TRACE_") {
                    let near =
                        crate::tcp::config::nearest::nearest(name, KEYS.iter().map(|(_, v)| *v));
                    return Err(TraceConfigError {
                        key: None,
                        variable: Some(name.to_string()),
                        message: format!(
                            "names no trace key; the nearest valid variable is {near}"
                        ),
                    });
                }
                continue;
            };
            let with_variable = |mut e: TraceConfigError| {
                e.variable = Some(name.to_string());
                e
            };
            let Some(value) = value.as_ref().to_str() else {
                return Err(with_variable(TraceConfigError::at(
                    key,
                    "the value is not valid Unicode".to_string(),
                )));
            };
            cfg.set(key, Given::Variable(value))
                .map_err(with_variable)?;
        }
        Ok(cfg)
    }

    /// The defaults with the process's environment over them
    /// ([`load`](Self::load) without a file).
    ///
    /// # Errors
    ///
    /// The message of the [`TraceConfigError`], naming the key and the
    /// variable.
    pub fn from_env() -> Result<TraceConfig, String> {
        TraceConfig::load("", std::env::vars_os()).map_err(|e| e.to_string())
    }

    /// Sets `key` from `given`, checked.
    fn set(&mut self, key: &str, given: Given<'_>) -> Result<(), TraceConfigError> {
        let shown = match given {
            Given::File(v) => v.to_string(),
            Given::Variable(v) => v.to_string(),
        };
        let wrong = |what: &str| TraceConfigError::at(key, format!("{shown} is not {what}"));
        let count = || -> Option<u32> {
            match given {
                Given::File(toml::Value::Integer(n)) => u32::try_from(*n).ok(),
                Given::File(_) => None,
                Given::Variable(v) => v.parse().ok(),
            }
        };
        match key {
            "enabled" => {
                self.enabled = match given {
                    Given::File(toml::Value::Boolean(b)) => *b,
                    Given::Variable("1" | "true" | "on") => true,
                    Given::Variable("0" | "false" | "off") => false,
                    _ => return Err(wrong("a switch (true or false)")),
                };
            }
            "records" => {
                self.records = count()
                    .filter(|n| n.is_power_of_two() && *n >= 4)
                    .ok_or_else(|| wrong("a power of two of 4 or more"))?;
            }
            "archive_per_sec" => {
                self.archive_per_sec = count().ok_or_else(|| wrong("a count"))?;
            }
            "dir" => {
                let dir = match given {
                    Given::File(toml::Value::String(s)) => s.as_str(),
                    Given::Variable(v) => v,
                    Given::File(_) => return Err(wrong("a path (a string)")),
                };
                if dir.is_empty() {
                    return Err(TraceConfigError::at(key, "an empty path".to_string()));
                }
                self.dir = PathBuf::from(dir);
            }
            _ => {
                let near = crate::tcp::config::nearest::nearest(key, KEYS.iter().map(|(k, _)| *k));
                return Err(TraceConfigError::at(
                    key,
                    format!("unknown key; the nearest valid key is trace.{near}"),
                ));
            }
        }
        Ok(())
    }
}
