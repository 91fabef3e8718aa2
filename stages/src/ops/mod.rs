//! Operability: what a running (or dead) instance tells about itself.
//!
//! Each worker publishes a snapshot of its figures every
//! `stats.interval_ms` into a file of its own, mapped shared, under the
//! instance's directory (`$TPA_RUN_DIR` or `/run/tpa`, then the instance
//! id); `tpactl` and the Prometheus endpoint read the files without ever
//! asking or stopping a worker, and the files outlive the process until
//! the next instance with that id starts. A small control thread serves
//! the instance's control socket (runtime knobs: `tpactl cfg`).
//! doc/operations.md tells how to use them.
//!
//! - [`snapshot`]: what a worker publishes.
//! - `file`: the shared file, two halves under sequence locks.
//! - [`meter`]: the worker loop's time.
//! - [`collect`]: filling a snapshot from a pipeline's parts.
//! - [`Instance`]: the run directory, knobs, control socket, publishers.
//! - [`prometheus`]: the text endpoint.
//! - [`OpsConfig`]: the knobs at start.
//! - [`log`]: the apps' logs through `tracing`.
//! - [`Settings`]: an app's config file (`--config FILE`), all its tables.
//! - [`OpsFlags`]: the apps' shared flags (`--config`, `--id`,
//!   `--metrics`, `--no-stats`) over the file and the environment.
//! - [`stack`]: what a worker of tpa's TCP stack publishes, and the trace
//!   knob applied to it.

pub mod collect;
mod config;
pub mod file;
mod flags;
mod instance;
pub mod log;
pub mod meter;
pub mod prometheus;
mod settings;
pub mod snapshot;
pub mod stack;

pub use config::{valid_id, OpsConfig, OpsConfigError, OPS_KEYS};
pub use flags::OpsFlags;
pub use instance::{request, run_metered, Change, Instance, Knobs, Publisher, RUNTIME_KNOBS};
pub use settings::{Settings, TABLES};
