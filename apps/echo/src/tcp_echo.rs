//! The server's TCP echo: every byte of every connection back to its
//! sender, zero-copy where it can.
//!
//! A received buffer (the frame, trimmed to its payload) is queued back
//! whole with `send_buf`: no copy, no allocation; it is released when the
//! peer acknowledges the echo. A buffer larger than one of our segments
//! (a peer whose segments exceed our MSS) is copied with `send` instead.
//!
//! Backpressure: when the send queue is full, the buffer in hand is held
//! and nothing more is read, so the receive queue fills and the window
//! the peer sees closes; `Writable` resumes. Half-close: after the peer's
//! FIN, what is left is echoed, then the connection is closed (our FIN
//! follows the last byte).

use std::collections::HashMap;

use tpa::app::{SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa::state::Part;
use tpa_stages::tcp::{self, TcpSockets};

use crate::report::TcpReport;

/// One connection's echo.
#[derive(Debug)]
struct Conn<B> {
    /// A received buffer the send queue had no room for, and how many of
    /// its bytes were already queued by copy.
    held: Option<(B, usize)>,
    /// The peer's end of stream was read.
    eof: bool,
}

/// Every connection's echo, and the figures.
#[derive(Debug)]
pub struct TcpEcho<B> {
    conns: HashMap<SocketId, Conn<B>>,
    report: TcpReport,
}

impl<B> Default for TcpEcho<B> {
    fn default() -> Self {
        TcpEcho {
            conns: HashMap::new(),
            report: TcpReport::default(),
        }
    }
}

impl<B: PacketBuf> TcpEcho<B> {
    /// The figures so far (`open`: connections now).
    pub fn report(&self) -> TcpReport {
        TcpReport {
            open: self.conns.len() as u64,
            ..self.report.clone()
        }
    }

    /// A connection of `listener` is established: takes every one waiting
    /// and echoes what they already brought.
    pub fn accepted<S: Part<TcpSockets<B>>>(
        &mut self,
        listener: SocketId,
        socket: SocketId,
        cx: &mut Cx<'_, B, S>,
    ) {
        let mut taken = vec![socket];
        while let Ok((s, _peer)) = tcp::accept(cx, listener) {
            taken.push(s);
        }
        for s in taken {
            if !self.conns.contains_key(&s) {
                self.report.accepted += 1;
                self.conns.insert(
                    s,
                    Conn {
                        held: None,
                        eof: false,
                    },
                );
            }
            self.pump(s, cx);
        }
    }

    /// Data arrived, the send queue has room again, or the peer ended its
    /// stream: echo what can be.
    pub fn pump<S: Part<TcpSockets<B>>>(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        let Some(conn) = self.conns.get_mut(&socket) else {
            return;
        };
        let report = &mut self.report;
        let failure = loop {
            let (buf, done) = match conn.held.take() {
                Some(held) => held,
                None if conn.eof => break None,
                None => match tcp::recv(cx, socket) {
                    Ok(Some(buf)) => {
                        report.bytes += buf.total_len() as u64;
                        (buf, 0)
                    }
                    Ok(None) => {
                        conn.eof = true;
                        break None;
                    }
                    Err(SocketError::WouldBlock) => return,
                    Err(e) => break Some(e),
                },
            };
            let result = if done == 0 {
                match tcp::send_buf(cx, socket, buf) {
                    Ok(()) => {
                        report.zero_copy += 1;
                        continue;
                    }
                    Err((SocketError::MessageTooLong, buf)) => send_copy(cx, socket, buf, 0),
                    Err((e, buf)) => Err((e, buf, 0)),
                }
            } else {
                send_copy(cx, socket, buf, done)
            };
            match result {
                Ok(copied) => report.copied += copied as u64,
                Err((SocketError::WouldBlock, buf, done)) => {
                    report.blocked += 1;
                    conn.held = Some((buf, done));
                    return;
                }
                Err((e, _, _)) => break Some(e),
            }
        };
        match failure {
            Some(e) => self.failed(socket, e, cx),
            None => {
                // The peer's end read and everything echoed: our FIN
                // follows the last byte.
                self.conns.remove(&socket);
                self.report.closed += 1;
                let _ = tcp::close(cx, socket);
            }
        }
    }

    /// The connection failed (reset, timed out…): counted, closed.
    pub fn failed<S: Part<TcpSockets<B>>>(
        &mut self,
        socket: SocketId,
        error: SocketError,
        cx: &mut Cx<'_, B, S>,
    ) {
        if self.conns.remove(&socket).is_some() {
            self.report.failed(error.name());
            let _ = tcp::close(cx, socket);
        }
    }

    /// The connection closed under us without an error first.
    pub fn closed<S: Part<TcpSockets<B>>>(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        if self.conns.remove(&socket).is_some() {
            self.report.failed("closed");
            let _ = tcp::close(cx, socket);
        }
    }
}

/// Copies `buf`'s bytes from offset `done` into the send queue; returns
/// how many it copied, or the error with the buffer and the new offset.
#[allow(clippy::type_complexity)]
fn send_copy<B: PacketBuf, S: Part<TcpSockets<B>>>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    buf: B,
    done: usize,
) -> Result<usize, (SocketError, B, usize)> {
    let mut offset = 0;
    let mut copied = 0;
    let mut error = None;
    'segments: for segment in buf.segments() {
        let end = offset + segment.len();
        let mut from = done.max(offset);
        while from < end {
            match tcp::send(cx, socket, &segment[from - offset..]) {
                Ok(0) => {
                    error = Some((SocketError::WouldBlock, from));
                    break 'segments;
                }
                Ok(n) => {
                    from += n;
                    copied += n;
                }
                Err(e) => {
                    error = Some((e, from));
                    break 'segments;
                }
            }
        }
        offset = end;
    }
    match error {
        None => Ok(copied),
        Some((e, from)) => Err((e, buf, from)),
    }
}
