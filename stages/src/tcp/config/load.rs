//! From text and environment to a checked [`TcpConfig`].
//!
//! The steps, each naming the key it refuses:
//! 1. parse the TOML and take its `[tcp]` table;
//! 2. walk it against the layout: an unknown key is refused with the
//!    nearest valid one, a value where a sub-table belongs with the keys the
//!    sub-table takes;
//! 3. apply the `TPA_TCP_*` overrides on top;
//! 4. type every value on its own (serde), so a type error names its key;
//! 5. check ranges and the rules between keys;
//! 6. narrow into the struct.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use serde::{Deserialize, Serialize};

use super::env::{overrides, variable_for};
use super::error::{full_key, ConfigError, ConfigErrorKind};
use super::file::{join, leaf_keys, schema, TcpSection};
use super::nearest::nearest;
use super::TcpConfig;

impl TcpConfig {
    /// The `[tcp]` table of a tpa config file, validated. Keys left out keep
    /// their defaults; a file without `[tcp]` gives the defaults. Other
    /// top-level tables belong to other parts of tpa and are not read here.
    ///
    /// ```
    /// use tpa_stages::tcp::config::{CongestionAlgorithm, TcpConfig};
    /// let cfg = TcpConfig::from_toml(r#"
    ///     [tcp]
    ///     send_queue = "1MiB"
    ///     congestion = "newreno"
    ///
    ///     [tcp.rto]
    ///     min = "10ms"
    ///
    ///     [tcp.keepalive]
    ///     enabled = true
    ///     idle = "30s"
    /// "#).unwrap();
    /// assert_eq!(cfg.send_queue_bytes, 1 << 20);
    /// assert_eq!(cfg.congestion, CongestionAlgorithm::NewReno);
    /// assert_eq!(cfg.rto_min_ns, 10_000_000);
    /// assert!(cfg.keepalive);
    /// assert_eq!(cfg.keepalive_idle_ns, 30_000_000_000);
    /// assert_eq!(cfg.rto_max_ns, TcpConfig::default().rto_max_ns);
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::load(text, std::iter::empty::<(&str, &str)>())
    }

    /// The defaults with the `TPA_TCP_*` overrides among `env` applied,
    /// validated. Pass `std::env::vars_os()` for the process's environment;
    /// tests pass their own pairs.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// let cfg = TcpConfig::from_env([
    ///     ("TPA_TCP_OPTIONS_SACK", "false"),
    ///     ("TPA_TCP_RTO_MIN", "50ms"),
    ///     ("HOME", "/root"),
    /// ]).unwrap();
    /// assert!(!cfg.sack);
    /// assert_eq!(cfg.rto_min_ns, 50_000_000);
    /// ```
    pub fn from_env<I, K, V>(env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::load("", env)
    }

    /// The `[tcp]` table of `text`, then the `TPA_TCP_*` overrides among
    /// `env` over it, validated: the loader applications call, as
    /// `TcpConfig::load(&text, std::env::vars_os())`.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// let file = "[tcp.retries]\nsyn = 3\ndata = 8\n";
    /// let cfg = TcpConfig::load(file, [("TPA_TCP_RETRIES_SYN", "2")]).unwrap();
    /// assert_eq!((cfg.syn_retries, cfg.data_retries), (2, 8));
    /// ```
    pub fn load<I, K, V>(text: &str, env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut table = tcp_table(text)?;
        let schema = schema();
        check_shape(&table, &schema, "")?;

        let keys = leaf_keys();
        let mut origin = BTreeMap::new();
        for o in overrides(env, &keys)? {
            insert(&mut table, &o.key, o.value);
            origin.insert(full_key(&o.key), o.variable);
        }
        let variable_of = |err: &ConfigError| err.key().and_then(|key| origin.get(key)).cloned();

        let mut leaves = Vec::new();
        collect_leaves(&table, &schema, "", &mut leaves);
        for (key, value) in leaves {
            type_alone(&key, value).map_err(|err| {
                let variable = variable_of(&err);
                err.with_variable(variable.as_deref())
            })?;
        }
        let section: TcpSection = toml::Value::Table(table)
            .try_into()
            .map_err(|err| ConfigError::at("", ConfigErrorKind::Type(message_of(err))))?;
        section.check().map_err(|err| {
            let variable = variable_of(&err);
            err.with_variable(variable.as_deref())
        })?;
        Ok(section.to_config())
    }

    /// Checks every range and rule the loader checks, for a config built in
    /// code.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// let cfg = TcpConfig { port_first: 50_000, port_last: 40_000, ..TcpConfig::default() };
    /// assert_eq!(cfg.validate().unwrap_err().key(), Some("tcp.local_port_range"));
    /// assert!(TcpConfig::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        TcpSection::from(self).check()
    }

    /// This config as the `[tcp]` table of a config file; every key
    /// written, times and sizes in human units. [`TcpConfig::from_toml`]
    /// reads it back equal.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// let text = TcpConfig::default().to_toml();
    /// assert!(text.contains("min = \"200ms\""));
    /// assert_eq!(TcpConfig::from_toml(&text).unwrap(), TcpConfig::default());
    /// ```
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct File {
            tcp: TcpSection,
        }
        toml::to_string(&File {
            tcp: TcpSection::from(self),
        })
        .expect("the TCP section serializes to TOML")
    }

    /// Every key of the `[tcp]` table (dotted, in full: `tcp.rto.min`) with
    /// the environment variable that overrides it, sorted by key.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// let keys = TcpConfig::keys();
    /// assert!(keys.contains(&("tcp.rto.min".to_string(), "TPA_TCP_RTO_MIN".to_string())));
    /// ```
    pub fn keys() -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> = leaf_keys()
            .into_iter()
            .map(|key| (full_key(&key), variable_for(&key)))
            .collect();
        keys.sort();
        keys
    }
}

/// The `[tcp]` table of a config file (empty when there is none).
fn tcp_table(text: &str) -> Result<toml::Table, ConfigError> {
    let mut document: toml::Table = toml::from_str(text)
        .map_err(|err| ConfigError::syntax(err.to_string().trim_end().to_string()))?;
    match document.remove("tcp") {
        None => Ok(toml::Table::new()),
        Some(toml::Value::Table(table)) => Ok(table),
        Some(other) => Err(ConfigError::at(
            "",
            ConfigErrorKind::Type(format!(
                "expected a table ([tcp]), found {}",
                describe(&other)
            )),
        )),
    }
}

/// Refuses keys the layout does not have, and values where it has a
/// sub-table.
fn check_shape(user: &toml::Table, schema: &toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (name, value) in user {
        let key = join(prefix, name);
        match schema.get(name) {
            None => {
                let all = all_keys();
                let nearest = full_key(&nearest(&key, all.iter().map(String::as_str)));
                return Err(ConfigError::at(
                    &key,
                    ConfigErrorKind::UnknownKey { nearest },
                ));
            }
            Some(toml::Value::Table(sub_schema)) => match value {
                toml::Value::Table(sub_user) => check_shape(sub_user, sub_schema, &key)?,
                other => {
                    let names: Vec<&str> = sub_schema.keys().map(String::as_str).collect();
                    return Err(ConfigError::at(
                        &key,
                        ConfigErrorKind::Type(format!(
                            "expected a table (keys {}), found {}",
                            names.join(", "),
                            describe(other)
                        )),
                    ));
                }
            },
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every key of the layout, leaves and sub-tables, dotted.
fn all_keys() -> Vec<String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (name, value) in table {
            let key = join(prefix, name);
            out.push(key.clone());
            if let toml::Value::Table(sub) = value {
                walk(&key, sub, out);
            }
        }
    }
    let mut keys = Vec::new();
    walk("", &schema(), &mut keys);
    keys.sort();
    keys
}

/// Sets `key` (dotted) in `table`, making the sub-tables on the way.
fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let sub = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !sub.is_table() {
                *sub = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(sub) = sub {
                insert(sub, rest, value);
            }
        }
    }
}

/// The leaf values of `table` with their dotted keys, in key order; a
/// table where the layout has a sub-table is walked into.
fn collect_leaves<'a>(
    table: &'a toml::Table,
    schema: &toml::Table,
    prefix: &str,
    out: &mut Vec<(String, &'a toml::Value)>,
) {
    let mut entries: Vec<(&String, &toml::Value)> = table.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in entries {
        let key = join(prefix, name);
        match (value, schema.get(name.as_str())) {
            (toml::Value::Table(sub), Some(toml::Value::Table(sub_schema))) => {
                collect_leaves(sub, sub_schema, &key, out)
            }
            _ => out.push((key, value)),
        }
    }
}

/// Types `value` as the layout's `key` would, with every other key at its
/// default: an error here is this key's alone.
fn type_alone(key: &str, value: &toml::Value) -> Result<(), ConfigError> {
    let mut table = toml::Table::new();
    insert(&mut table, key, value.clone());
    TcpSection::deserialize(toml::Value::Table(table))
        .map(drop)
        .map_err(|err| ConfigError::at(key, ConfigErrorKind::Type(message_of(err))))
}

/// serde's message, without any position (the key says where).
fn message_of(err: toml::de::Error) -> String {
    err.message().trim_end().to_string()
}

/// "integer `5`", "a table": what the user wrote, for a type error.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(_) => "a table".into(),
        toml::Value::Array(_) => "an array".into(),
        other => format!("{} `{other}`", other.type_str()),
    }
}
