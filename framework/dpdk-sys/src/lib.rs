//! Raw bindings to the system DPDK (>= 22.11), generated at build time by
//! bindgen over only what tpa uses, plus `tpa_*` shim functions that export
//! DPDK's static-inline fast-path calls (`rte_eth_rx_burst`,
//! `rte_pktmbuf_alloc`, …) as real symbols.
//!
//! Everything here is `unsafe` and C-shaped; the safe API is `tpa::port::dpdk`.

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unnecessary_transmutes,
    clippy::all,
    clippy::pedantic,
    rustdoc::all,
    missing_docs
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use bindings::*;
