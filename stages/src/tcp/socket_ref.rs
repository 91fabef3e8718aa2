//! A connection looked up once for several calls in a row: a handler
//! that reads what arrived and answers it (an echo, a request/response
//! server) makes each call on the [`SocketRef`] without the handle's
//! lookup and checks that every [`tcp::recv_more`](super::recv_more) and
//! [`tcp::send`](super::send) makes on its own.
//!
//! ```
//! use tpa::app::{SocketError, SocketId};
//! use tpa::buf::PacketBuf;
//! use tpa::stage::Cx;
//! use tpa::state::Part;
//! use tpa_stages::tcp::{self, TcpSockets};
//!
//! /// Echoes every buffer waiting on `socket` (copying), one lookup for
//! /// all the calls; the buffers go back to the pool as each is copied.
//! fn echo<B: PacketBuf, S: Part<TcpSockets<B>>>(
//!     cx: &mut Cx<'_, B, S>,
//!     socket: SocketId,
//! ) -> Result<(), SocketError> {
//!     let mut s = tcp::socket_ref(cx, socket)?;
//!     while let Some((buf, more)) = s.recv_more()? {
//!         for data in buf.segments() {
//!             s.send(data)?;
//!         }
//!         if !more {
//!             break;
//!         }
//!     }
//!     Ok(())
//! }
//! ```

use tpa::app::{SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, PortCx};
use tpa::state::Part;

use super::conn::Connection;
use super::sockets::TcpSockets;

/// A connection looked up once (its handle checked, the connection queued
/// for output, its clock brought to the call's time) for the calls that
/// follow; it borrows the [`Cx`] until dropped. Made by [`socket_ref`].
pub struct SocketRef<'c, 'a, B: PacketBuf> {
    conn: &'c mut Connection<B>,
    /// The table's emptied send buffer, which a write takes before the
    /// pool's.
    spare: &'c mut Option<B>,
    port: &'c mut PortCx<'a, B>,
}

/// Looks `socket` up for several calls in a row (see [`SocketRef`]): the
/// same checks and the same effects as the first of the calls made one
/// by one.
///
/// # Errors
///
/// `BadSocket` for a stale handle, a listener's, or one the application
/// closed.
#[inline]
pub fn socket_ref<'c, 'a, B, S>(
    cx: &'c mut Cx<'a, B, S>,
    socket: SocketId,
) -> Result<SocketRef<'c, 'a, B>, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    let now_ns = cx.now_ns();
    let (state, port) = cx.split();
    let (conn, spare) = Part::<TcpSockets<B>>::part_mut(state).conn_for_write(socket)?;
    conn.advance_clock(now_ns);
    Ok(SocketRef { conn, spare, port })
}

impl<B: PacketBuf> SocketRef<'_, '_, B> {
    /// As [`tcp::recv_more`](super::recv_more).
    ///
    /// # Errors
    ///
    /// As [`tcp::recv`](super::recv).
    #[inline]
    pub fn recv_more(&mut self) -> Result<Option<(B, bool)>, SocketError> {
        self.conn.recv_more()
    }

    /// As [`tcp::recv`](super::recv).
    ///
    /// # Errors
    ///
    /// As [`tcp::recv`](super::recv).
    #[inline]
    pub fn recv(&mut self) -> Result<Option<B>, SocketError> {
        self.conn.recv()
    }

    /// As [`tcp::send`](super::send): copies as much of `data` as the
    /// send queue takes; returns how much.
    ///
    /// # Errors
    ///
    /// As [`tcp::send`](super::send).
    #[inline(never)]
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        let SocketRef { conn, spare, port } = self;
        conn.send(data, &mut || spare.take().or_else(|| port.alloc()))
    }
}
