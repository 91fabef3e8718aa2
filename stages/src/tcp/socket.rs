//! The socket calls of the application, over the [`Cx`] the loop hands to
//! the app (or a stage): listen, connect, accept, receive, read, send,
//! shutdown, close, abort, info. Errors are errno-like [`SocketError`]s.
//!
//! Segments the calls cause (the SYN of a connect, the data of a send, a
//! FIN, a window update after a read) leave at the TCP input stage's
//! next poll, in the same loop iteration when the call is made from the
//! app.
//!
//! ```
//! use tpa::app::{SocketError, SocketId};
//! use tpa::buf::PacketBuf;
//! use tpa::stage::Cx;
//! use tpa::state::Part;
//! use tpa_stages::tcp::{self, TcpSockets};
//!
//! /// Echoes what `socket` received, copying; stops when the send queue
//! /// is full (the data stays queued until the next `Writable`).
//! fn echo<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, socket: SocketId) {
//!     let mut chunk = [0u8; 1024];
//!     loop {
//!         let room = tcp::send_space(cx, socket).unwrap_or(0).min(chunk.len());
//!         match tcp::read(cx, socket, &mut chunk[..room.max(1)]) {
//!             Ok(0) | Err(_) => break, // end of stream, or nothing (WouldBlock)
//!             Ok(n) => {
//!                 let _ = tcp::send(cx, socket, &chunk[..n]);
//!             }
//!         }
//!     }
//! }
//! ```

use std::net::SocketAddr;

use tpa::app::{SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa::state::{Part, Parts};

use super::conn::TcpInfo;
use super::input::mss_for;
use super::TcpSockets;
use crate::egress::Egress;

/// Opens a listener on `local` (one of our addresses, or a family's
/// unspecified address) holding at most `backlog` unaccepted connections
/// (capped by `TcpConfig::backlog`). New connections raise
/// [`Accepted`](tpa::app::EventKind::Accepted) once established and wait
/// for [`accept`].
///
/// # Errors
///
/// As [`TcpSockets::listen`].
pub fn listen<B, S>(
    cx: &mut Cx<'_, B, S>,
    local: SocketAddr,
    backlog: usize,
) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Parts<(TcpSockets<B>, Egress<B>)>,
{
    let (sockets, egress) = cx.state_mut().parts();
    sockets.listen(local, backlog, egress.interface())
}

/// Opens a connection to `remote` from the address the route to it
/// chooses and an ephemeral port whose replies land on this worker's
/// queue. Returns at once (the handshake is under way, as
/// `EINPROGRESS`): [`Writable`](tpa::app::EventKind::Writable) says it is
/// established, [`Error`](tpa::app::EventKind::Error) with
/// `ConnectionRefused` or `TimedOut` that it failed.
///
/// # Errors
///
/// `NetworkUnreachable` without a route; otherwise as
/// [`TcpSockets::connect`].
pub fn connect<B, S>(cx: &mut Cx<'_, B, S>, remote: SocketAddr) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let local = cx
        .part::<Egress<B>>()
        .route_source_for(remote.ip())
        .ok_or(SocketError::NetworkUnreachable)?;
    connect_from(cx, SocketAddr::new(local, 0), remote)
}

/// As [`connect`], from `local` (one of our addresses; port 0 for an
/// ephemeral one).
///
/// # Errors
///
/// `AddressNotAvailable` for an address not ours; otherwise as
/// [`TcpSockets::connect`].
pub fn connect_from<B, S>(
    cx: &mut Cx<'_, B, S>,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let iface = cx.part::<Egress<B>>().interface();
    let ours = match local.ip() {
        std::net::IpAddr::V4(a) => iface.owns_ipv4(a),
        std::net::IpAddr::V6(a) => iface.owns_ipv6(a),
    };
    if !ours {
        return Err(SocketError::AddressNotAvailable);
    }
    let mss = mss_for(cx, local.ip());
    let (queue, now_ns) = (cx.caps().queue, cx.now_ns());
    cx.part::<TcpSockets<B>>()
        .connect(local, remote, mss, queue, now_ns)
}

/// The oldest established connection waiting on `listener`, and its
/// peer's address.
///
/// # Errors
///
/// `WouldBlock` when none waits; as [`TcpSockets::accept`].
pub fn accept<B, S>(
    cx: &mut Cx<'_, B, S>,
    listener: SocketId,
) -> Result<(SocketId, SocketAddr), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().accept(listener)
}

/// The next received buffer of `socket`, zero-copy (the received frame
/// trimmed to its payload; release it by dropping it). `Ok(None)` is the
/// end of the stream (the peer's FIN, all data read).
///
/// # Errors
///
/// `WouldBlock` when nothing waits (readiness is edge-triggered:
/// [`Readable`](tpa::app::EventKind::Readable) comes again once new data
/// arrives); `ConnectionReset` after a reset; `BadSocket`.
pub fn recv<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<Option<B>, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().conn_mut(socket)?.recv()
}

/// Copies received bytes of `socket` into `out`; `Ok(0)` (with `out` not
/// empty) is the end of the stream.
///
/// # Errors
///
/// As [`recv`].
pub fn read<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    out: &mut [u8],
) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().conn_mut(socket)?.read(out)
}

/// Copies as much of `data` as the send queue takes into buffers from the
/// port's pool; returns how much.
///
/// # Errors
///
/// `WouldBlock` when the queue is full ([`Writable`](tpa::app::EventKind::Writable)
/// says when it has room again); `BrokenPipe` after `shutdown` or
/// `close`; `NoBuffers` when the pool is empty; as the engine says
/// otherwise.
pub fn send<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    data: &[u8],
) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    let (state, port) = cx.split();
    let conn = Part::<TcpSockets<B>>::part_mut(state).conn_mut(socket)?;
    conn.send(data, &mut || port.alloc())
}

/// Queues `buf` (every segment of it) without a copy: it is shared into
/// the send queue and released once the peer acknowledged it.
///
/// # Errors
///
/// As [`send`], with the buffer back.
pub fn send_buf<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    buf: B,
) -> Result<(), (SocketError, B)>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    match cx.part::<TcpSockets<B>>().conn_mut(socket) {
        Ok(conn) => conn.send_buf(buf),
        Err(e) => Err((e, buf)),
    }
}

/// Bytes [`send`] would take from `socket` now.
///
/// # Errors
///
/// `BadSocket`.
pub fn send_space<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>()
        .conn_mut(socket)
        .map(|c| c.send_space())
}

/// Half-closes `socket`: a FIN follows the queued data; receiving goes on.
///
/// # Errors
///
/// `NotConnected` before the connection is established (as the engine
/// says); `BadSocket`.
pub fn shutdown<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().conn_mut(socket)?.shutdown()
}

/// Closes `socket` (a listener or a connection); see
/// [`TcpSockets::close`]. The handle is invalid afterwards.
///
/// # Errors
///
/// `BadSocket`.
pub fn close<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().close(socket)
}

/// Resets `socket`'s connection now; see [`TcpSockets::abort`].
///
/// # Errors
///
/// `BadSocket`.
pub fn abort<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().abort(socket)
}

/// A `TCP_INFO`-like snapshot of `socket`'s connection.
///
/// # Errors
///
/// `BadSocket`.
pub fn info<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<TcpInfo, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().info(socket)
}
