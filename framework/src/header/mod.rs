//! The runtime behind `#[header]`: what generated views rely on.
