//! What can be wrong with a TCP config, naming the key (and the
//! environment variable when the value came from one).

use std::fmt;

/// Why a TCP config was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The text is not TOML.
    Syntax(String),
    /// A key the config does not have; `nearest` is the valid key closest
    /// to it (by edit distance).
    UnknownKey {
        /// The closest valid key, in full (`tcp.rto.min`).
        nearest: String,
    },
    /// A `TPA_TCP_*` variable that names no key; `nearest` is the closest
    /// valid variable.
    UnknownVariable {
        /// The closest valid variable name.
        nearest: String,
    },
    /// A `TPA_TCP_*` variable whose value is not Unicode.
    NotUnicode,
    /// The value has the wrong type or does not parse: the message says
    /// what was expected.
    Type(String),
    /// The value parses but is out of range, or contradicts another key.
    Range(String),
}

/// A refused TCP config: what is wrong, and where.
///
/// ```
/// use tpa_stages::tcp::config::TcpConfig;
/// let err = TcpConfig::from_toml("[tcp]\nsack = true\n").unwrap_err();
/// assert_eq!(err.key(), Some("tcp.sack"));
/// assert_eq!(
///     err.to_string(),
///     "tcp.sack: unknown key; the nearest valid key is tcp.options.sack"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    key: Option<String>,
    variable: Option<String>,
    kind: ConfigErrorKind,
}

impl ConfigError {
    pub(super) fn syntax(message: String) -> Self {
        ConfigError {
            key: None,
            variable: None,
            kind: ConfigErrorKind::Syntax(message),
        }
    }

    pub(super) fn at(key: &str, kind: ConfigErrorKind) -> Self {
        ConfigError {
            key: Some(full_key(key)),
            variable: None,
            kind,
        }
    }

    pub(super) fn variable(variable: &str, kind: ConfigErrorKind) -> Self {
        ConfigError {
            key: None,
            variable: Some(variable.to_string()),
            kind,
        }
    }

    /// Notes that the value at fault came from `variable`.
    pub(super) fn with_variable(mut self, variable: Option<&str>) -> Self {
        if let Some(variable) = variable {
            self.variable = Some(variable.to_string());
        }
        self
    }

    /// The key at fault, in full (`tcp.rto.min`); `None` for a syntax error
    /// or a variable that names no key.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The environment variable the faulty value came from, if it did.
    pub fn variable_name(&self) -> Option<&str> {
        self.variable.as_deref()
    }

    /// What is wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }
}

/// `rto.min` → `tcp.rto.min`: how keys are named to the user.
pub(super) fn full_key(key: &str) -> String {
    if key.is_empty() {
        "tcp".to_string()
    } else {
        format!("tcp.{key}")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.variable) {
            (Some(key), Some(variable)) => write!(f, "{key} (from {variable}): ")?,
            (Some(key), None) => write!(f, "{key}: ")?,
            (None, Some(variable)) => write!(f, "{variable}: ")?,
            (None, None) => f.write_str("TCP config: ")?,
        }
        match &self.kind {
            ConfigErrorKind::Syntax(message) => write!(f, "not valid TOML: {message}"),
            ConfigErrorKind::UnknownKey { nearest } => {
                write!(f, "unknown key; the nearest valid key is {nearest}")
            }
            ConfigErrorKind::UnknownVariable { nearest } => {
                write!(
                    f,
                    "names no TCP key; the nearest valid variable is {nearest}"
                )
            }
            ConfigErrorKind::NotUnicode => f.write_str("the value is not valid Unicode"),
            ConfigErrorKind::Type(message) | ConfigErrorKind::Range(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for ConfigError {}
