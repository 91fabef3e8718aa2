//! Environment overrides: `TPA_TCP_<KEY>`, the key upper-cased with dots
//! turned into underscores (`tcp.rto.min` → `TPA_TCP_RTO_MIN`).
//!
//! A value is read as a TOML value when it is one (`true`, `42`,
//! `[40000, 50000]`, `"200ms"`) and as a bare string otherwise (`200ms`,
//! `cubic`, `40000-50000`), then typed exactly as the file's value would be.
//! Every variable under the prefix must name a key: a misspelt override is
//! an error, not silently ignored.

use std::ffi::OsStr;

use super::error::{ConfigError, ConfigErrorKind};
use super::nearest::nearest;

/// The prefix every TCP override starts with.
pub const PREFIX: &str = "TPA_TCP_";

/// The variable that overrides `key` (dotted, without `tcp.`).
///
/// ```
/// use tpa_stages::tcp::config::env::variable_for;
/// assert_eq!(variable_for("keepalive.idle"), "TPA_TCP_KEEPALIVE_IDLE");
/// ```
pub fn variable_for(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// One override: the key it sets, the variable it came from, the value.
pub(super) struct Override {
    pub key: String,
    pub variable: String,
    pub value: toml::Value,
}

/// The overrides among `env`, sorted by variable name; other variables are
/// ignored.
pub(super) fn overrides<I, K, V>(env: I, keys: &[String]) -> Result<Vec<Override>, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let variables: Vec<String> = keys.iter().map(|key| variable_for(key)).collect();
    let mut found = Vec::new();
    for (name, value) in env {
        let name = name.as_ref().to_string_lossy();
        if !name.starts_with(PREFIX) {
            continue;
        }
        let Some(index) = variables.iter().position(|v| *v == name) else {
            let nearest = nearest(&name, variables.iter().map(String::as_str));
            return Err(ConfigError::variable(
                &name,
                ConfigErrorKind::UnknownVariable { nearest },
            ));
        };
        let Some(text) = value.as_ref().to_str() else {
            return Err(ConfigError::at(&keys[index], ConfigErrorKind::NotUnicode)
                .with_variable(Some(&name)));
        };
        found.push(Override {
            key: keys[index].clone(),
            variable: name.into_owned(),
            value: parse_value(text),
        });
    }
    found.sort_by(|a, b| a.variable.cmp(&b.variable));
    Ok(found)
}

/// `text` as a TOML value if it is exactly one, else as a string.
fn parse_value(text: &str) -> toml::Value {
    let parsed = toml::from_str::<toml::Table>(&format!("value = {text}"));
    match parsed {
        Ok(mut table) if table.len() == 1 => table
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        _ => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("1_024"), toml::Value::Integer(1024));
        assert_eq!(
            parse_value("\"200ms\""),
            toml::Value::String("200ms".into())
        );
        assert_eq!(parse_value("200ms"), toml::Value::String("200ms".into()));
        assert_eq!(parse_value("cubic"), toml::Value::String("cubic".into()));
        assert_eq!(
            parse_value("[40000, 50000]"),
            toml::Value::Array(vec![40000.into(), 50000.into()])
        );
        // A value that smuggles a second key stays one string.
        assert_eq!(
            parse_value("1\nother = 2"),
            toml::Value::String("1\nother = 2".into())
        );
    }
}
