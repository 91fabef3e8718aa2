//! tpa-redis-proxy: a redis proxy meant as a drop-in for twemproxy
//! (nutcracker) and as a Redis Cluster proxy: RESP parsing and encoding,
//! the command table, key hashing and distribution, nutcracker's YAML
//! config, the sans-IO proxy engine, its kernel-socket runtime and its
//! runtime on tpa's own TCP stack. See
//! doc/redis-proxy.md.

pub mod cluster;
pub mod command;
pub mod config;
pub mod hash;
pub mod kernel;
pub mod proxy;
pub mod resp;
pub mod stack;
pub mod tpa;
