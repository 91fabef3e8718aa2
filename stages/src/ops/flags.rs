//! The operability flags the tpa apps share: a config file (`--config`;
//! tpa-redis-proxy's `--tpa-config`, beside nutcracker's `-c`), `--id`,
//! `--metrics`, `--no-stats`. Each app declares them in its own command
//! line; this lays them over the `TPA_*` variables, over the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::config::valid_id;
use super::settings::Settings;

/// What an app's operability flags said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsFlags {
    /// The config file's path, if one was given.
    pub config: Option<PathBuf>,
    /// The instance's id (`--id`).
    pub id: Option<String>,
    /// The Prometheus endpoint's address (`--metrics`).
    pub metrics: Option<SocketAddr>,
    /// No stats, control socket nor endpoint (`--no-stats`).
    pub no_stats: bool,
}

impl OpsFlags {
    /// The config file's tables, the environment over them, these flags
    /// over both; `config_flag` is how the app names its file's flag
    /// (`--config`), for the errors.
    ///
    /// ```
    /// use tpa_stages::ops::OpsFlags;
    /// let flags = OpsFlags { id: Some("cache-a".into()), no_stats: true, ..OpsFlags::default() };
    /// let s = flags.settings("--config").unwrap();
    /// assert_eq!(s.ops.id.as_deref(), Some("cache-a"));
    /// assert!(!s.ops.enabled);
    /// let bad = OpsFlags { id: Some("../x".into()), ..OpsFlags::default() };
    /// assert!(bad.settings("--config").unwrap_err().starts_with("--id \"../x\""));
    /// ```
    ///
    /// # Errors
    ///
    /// The file's or a variable's error (as [`Settings::read`], after
    /// `config_flag`), or an id that is not one, naming `--id`.
    pub fn settings(&self, config_flag: &str) -> Result<Settings, String> {
        let mut settings =
            Settings::read(self.config.as_deref()).map_err(|e| match self.config {
                Some(_) => format!("{config_flag} {e}"),
                None => e,
            })?;
        let ops = &mut settings.ops;
        if let Some(id) = &self.id {
            if !valid_id(id) {
                return Err(format!(
                    "--id {id:?}: letters, digits, -, _ and . only (64 at most)"
                ));
            }
            ops.id = Some(id.clone());
        }
        if self.metrics.is_some() {
            ops.metrics = self.metrics;
        }
        if self.no_stats {
            ops.enabled = false;
        }
        Ok(settings)
    }

    /// The first of these flags that was given, by its name
    /// (`config_flag` for the file's), for an app to refuse where they
    /// mean nothing (tperf's `--kernel`).
    pub fn first_given(&self, config_flag: &'static str) -> Option<&'static str> {
        [
            (self.id.is_some(), "--id"),
            (self.metrics.is_some(), "--metrics"),
            (self.no_stats, "--no-stats"),
            (self.config.is_some(), config_flag),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_win_over_the_file_and_errors_name_the_flag() {
        let dir = std::env::temp_dir().join(format!("tpa-ops-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tpa.toml");
        std::fs::write(
            &file,
            "[stats]\nid = \"from-file\"\n[metrics]\nlisten = \"127.0.0.1:9100\"\n",
        )
        .unwrap();
        let from_file = OpsFlags {
            config: Some(file.clone()),
            ..OpsFlags::default()
        };
        let s = from_file.settings("--tpa-config").unwrap();
        assert_eq!(s.ops.id.as_deref(), Some("from-file"));
        assert_eq!(s.ops.metrics.unwrap().port(), 9100);
        assert!(s.ops.enabled);
        let flags = OpsFlags {
            id: Some("from-flag".into()),
            metrics: Some("127.0.0.1:9200".parse().unwrap()),
            ..from_file.clone()
        };
        let s = flags.settings("--tpa-config").unwrap();
        assert_eq!(s.ops.id.as_deref(), Some("from-flag"));
        assert_eq!(s.ops.metrics.unwrap().port(), 9200);
        std::fs::write(&file, "[stats]\nidd = \"x\"\n").unwrap();
        let e = from_file.settings("--tpa-config").unwrap_err();
        assert!(
            e.starts_with(&format!("--tpa-config {}: stats.idd", file.display())),
            "{e}"
        );
        assert_eq!(from_file.first_given("--tpa-config"), Some("--tpa-config"));
        assert_eq!(flags.first_given("--config"), Some("--id"));
        assert_eq!(OpsFlags::default().first_given("--config"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
