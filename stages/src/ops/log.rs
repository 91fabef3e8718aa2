//! The apps' logs through `tracing`: to standard error, the level from
//! `TPA_LOG`, else `RUST_LOG`, else `info` (tracing's `EnvFilter` syntax:
//! `debug`, `tpa_stages::tcp=trace,info`); changed at runtime through the
//! control socket (`tpactl cfg log debug`).

use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The filter in force and the handle that changes it, once installed.
static FILTER: OnceLock<Mutex<(String, reload::Handle<EnvFilter, Registry>)>> = OnceLock::new();

/// The filter the environment asks for: `TPA_LOG`, else `RUST_LOG`, else
/// `info`.
pub fn filter_from_env() -> String {
    std::env::var("TPA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string())
}

/// Installs the process's subscriber with the environment's filter; does
/// nothing when one was installed already (a second app in one process:
/// a test).
///
/// # Errors
///
/// A filter that does not parse, naming the variables.
pub fn init() -> Result<(), String> {
    let text = filter_from_env();
    let filter =
        EnvFilter::try_new(&text).map_err(|e| format!("TPA_LOG / RUST_LOG {text:?}: {e}"))?;
    let (layer, handle) = reload::Layer::new(filter);
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
    if installed.is_ok() {
        let _ = FILTER.set(Mutex::new((text, handle)));
    }
    Ok(())
}

/// The filter in force; `None` when [`init`] did not install one.
pub fn current() -> Option<String> {
    Some(FILTER.get()?.lock().ok()?.0.clone())
}

/// Replaces the filter.
///
/// # Errors
///
/// No subscriber of ours, or a filter that does not parse.
pub fn set(text: &str) -> Result<(), String> {
    let Some(lock) = FILTER.get() else {
        return Err("this process's logs are not tpa's to change".into());
    };
    let filter = EnvFilter::try_new(text).map_err(|e| format!("{text:?}: {e}"))?;
    let mut held = lock.lock().map_err(|_| "poisoned".to_string())?;
    held.1.reload(filter).map_err(|e| e.to_string())?;
    held.0 = text.to_string();
    Ok(())
}
