//! tpa-redis-proxy: a redis proxy meant as a drop-in for twemproxy
//! (nutcracker) and as a Redis Cluster proxy. This crate is its protocol
//! core so far: RESP parsing and encoding, the command table, key hashing
//! and distribution, and nutcracker's YAML config. See doc/redis-proxy.md.

pub mod cluster;
pub mod command;
pub mod config;
pub mod hash;
pub mod kernel;
pub mod proxy;
pub mod resp;
