//! What a port sharing its interface and addresses with the host's kernel
//! needs from tpa's stack, and what it offers it ([`SharedHost`]).
//!
//! Beside the kernel (an AF_XDP port with tpa's XDP filter), the frames a
//! port delivers to tpa are only those of tpa's own flows, so:
//! - the port must be told which ports tpa listens on or has bound, when
//!   it does ([`SharedHost::open_port`], [`SharedHost::close_port`]); the
//!   socket tables call these, so applications need not;
//! - ARP and neighbour discovery stay the kernel's: tpa learns its
//!   neighbours from the kernel's table ([`SharedHost::neighbors`]) and,
//!   for one it does not know, asks the kernel to resolve it
//!   ([`SharedHost::resolve`]) rather than sending a request whose answer
//!   it would never see.
//!
//! The stages hold an `Arc<dyn SharedHost>`; they know nothing of how the
//! port does it.

use std::fmt::Debug;
use std::net::IpAddr;

use crate::app::Transport;
use crate::wire::MacAddr;

use super::PortError;

/// A port beside the host's kernel, as tpa's socket tables and egress
/// path see it.
pub trait SharedHost: Debug + Send + Sync {
    /// Frames to `port` of `transport` on tpa's addresses are tpa's from
    /// now on (a listener or a bound UDP socket).
    fn open_port(&self, transport: Transport, port: u16) -> Result<(), PortError>;

    /// Frames to `port` of `transport` are the kernel's again.
    fn close_port(&self, transport: Transport, port: u16) -> Result<(), PortError>;

    /// The neighbours the kernel has resolved on the interface.
    fn neighbors(&self) -> Result<Vec<(IpAddr, MacAddr)>, PortError>;

    /// Makes the kernel resolve `ip` (its answer shows in
    /// [`neighbors`](Self::neighbors) once it arrives).
    fn resolve(&self, ip: IpAddr) -> Result<(), PortError>;
}
