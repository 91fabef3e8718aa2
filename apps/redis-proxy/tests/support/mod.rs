//! Helpers shared by the integration tests: a blocking RESP client, a
//! real Redis Cluster on loopback ports, and the checks of a
//! redis-benchmark run.

#![allow(dead_code)]

pub mod bench;
pub mod client;
pub mod cluster;
