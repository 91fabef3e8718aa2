//! Helpers shared by the integration tests: a blocking RESP client and a
//! real Redis Cluster on loopback ports.

#![allow(dead_code)]

pub mod client;
pub mod cluster;
