//! tpa-drill: a runner for packetdrill-format TCP scripts. A script is a
//! timeline of socket calls and of the segments that must go in (`<`) and
//! out (`>`); the runner plays the remote end against a [`Backend`]
//! (tpa's stack on a virtual clock, or another stack) and reports each
//! script as passed, failed (with the line, the expected and the actual
//! segment) or unsupported (naming the construct).
//!
//! [`Backend`]: backend::Backend

pub mod backend;
pub mod matcher;
pub mod script;
pub mod segment;
