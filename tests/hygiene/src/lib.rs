//! A crate that makes life hard for generated code, to prove `#[header]`
//! and `#[pipeline]` hygienic: it depends on tpa under another name
//! (`my_tpa`, passed to the macros as `crate = my_tpa`), and the module
//! [`shadowed`] has no prelude and defines its own `core`, `std`, `Option`,
//! `Result`, `Some`, `Ok`, `From`, `Into`, `Default`, … that generated code
//! would pick up if it named them without a leading `::core::`.
//!
//! It compiles only if the expansions are hygienic; its tests run them.
//! `missing_docs` and `unsafe_code` are denied: generated code must not
//! trip either in a user's crate.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[no_implicit_prelude]
pub mod shadowed;

#[cfg(test)]
mod tests;
