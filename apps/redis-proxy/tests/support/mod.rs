//! Helpers shared by the integration tests: a blocking RESP client and
//! a readable one, a real Redis Cluster on loopback ports, the parts of
//! a lab (redis-servers, the proxy, its stats), and the checks of a
//! redis-benchmark run.

#![allow(dead_code)]

pub mod bench;
pub mod client;
pub mod cluster;
pub mod conn;
pub mod lab;
