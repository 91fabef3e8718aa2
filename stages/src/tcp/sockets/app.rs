//! The application's calls on a socket: access by handle, accept,
//! close and abort, and what it may ask of a socket.

use std::net::SocketAddr;

use tpa::app::{SocketError, SocketId, Transport};
use tpa::buf::PacketBuf;

use super::{Conn, Entry, Slot, TcpSockets};
use crate::tcp::conn::{Connection, State, TcpInfo};
use crate::tcp::wire::FourTuple;

impl<B: PacketBuf> TcpSockets<B> {
    /// The connection `socket` names, for an application call: taken out
    /// of its listener's accept queue if it was waiting there, and queued
    /// for the output path.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle, a listener's, or one the
    /// application closed.
    #[inline]
    pub(crate) fn conn_mut(&mut self, socket: SocketId) -> Result<&mut Connection<B>, SocketError> {
        // The common call, straight through: a live handle on a
        // connection already accepted, already dirty or with room in the
        // dirty list. Everything else (a stale handle, the first call
        // after accept, the dirty list's growth) is `conn_mut_rare`, out
        // of line, with the same outcome.
        if !self.is_common_call(socket) {
            return self.conn_mut_rare(socket);
        }
        let TcpSockets { slots, dirty, .. } = self;
        match &mut slots[socket.index as usize].entry {
            Entry::Conn(c) => {
                if !c.dirty {
                    c.dirty = true;
                    dirty.push(socket.index);
                }
                Ok(&mut c.conn)
            }
            // Checked above: a connection.
            _ => Err(SocketError::BadSocket),
        }
    }

    /// [`conn_mut`](Self::conn_mut), with the table's emptied send
    /// buffer, which a write takes before the pool's.
    ///
    /// # Errors
    ///
    /// As [`conn_mut`](Self::conn_mut).
    #[inline]
    pub(crate) fn conn_for_write(
        &mut self,
        socket: SocketId,
    ) -> Result<(&mut Connection<B>, &mut Option<B>), SocketError> {
        if !self.is_common_call(socket) {
            return self.conn_for_write_rare(socket);
        }
        // The slot as `is_common_call` found it: its checks serve this
        // lookup too (the rare path looks it up on its own).
        let TcpSockets {
            slots,
            dirty,
            spare_send_buf,
            ..
        } = self;
        match &mut slots[socket.index as usize].entry {
            Entry::Conn(c) => {
                if !c.dirty {
                    c.dirty = true;
                    dirty.push(socket.index);
                }
                Ok((&mut c.conn, spare_send_buf))
            }
            // Checked above: a connection.
            _ => Err(SocketError::BadSocket),
        }
    }

    /// [`conn_for_write`](Self::conn_for_write) for every call but the
    /// common one, as [`conn_mut_rare`](Self::conn_mut_rare), which
    /// leaves the slot marked.
    #[cold]
    #[inline(never)]
    fn conn_for_write_rare(
        &mut self,
        socket: SocketId,
    ) -> Result<(&mut Connection<B>, &mut Option<B>), SocketError> {
        self.conn_mut_rare(socket)?;
        let TcpSockets {
            slots,
            spare_send_buf,
            ..
        } = self;
        match &mut slots[socket.index as usize].entry {
            Entry::Conn(c) => Ok((&mut c.conn, spare_send_buf)),
            // `conn_mut_rare` found a connection there.
            _ => Err(SocketError::BadSocket),
        }
    }

    /// Whether `socket` is the common call's: a live handle on a
    /// connection already accepted, already dirty or with room in the
    /// dirty list.
    #[inline]
    fn is_common_call(&self, socket: SocketId) -> bool {
        socket.transport == Transport::Tcp
            && matches!(self.slots.get(socket.index as usize), Some(Slot {
                generation,
                entry: Entry::Conn(c),
            }) if *generation == socket.generation
                && !c.app_closed
                && c.listener.is_none()
                && (c.dirty || self.dirty.len() < self.dirty.capacity()))
    }

    /// [`conn_mut`](Self::conn_mut) for every call but the common one.
    #[cold]
    #[inline(never)]
    pub(super) fn conn_mut_rare(
        &mut self,
        socket: SocketId,
    ) -> Result<&mut Connection<B>, SocketError> {
        let index = self.index(socket)?;
        if matches!(&self.slots[index as usize].entry,
            Entry::Conn(c) if !c.app_closed && c.listener.is_some())
        {
            self.leave_accept_queue_first(index, socket);
        }
        // The slot looked up once more, marked for output in place.
        let TcpSockets { slots, dirty, .. } = self;
        match &mut slots[index as usize].entry {
            Entry::Conn(c) if !c.app_closed => {
                if !c.dirty {
                    c.dirty = true;
                    dirty.push(index);
                }
                Ok(&mut c.conn)
            }
            _ => Err(SocketError::BadSocket),
        }
    }

    /// The first application call on an accepted connection: it leaves
    /// its listener's accept queue.
    #[cold]
    pub(super) fn leave_accept_queue_first(&mut self, index: u32, socket: SocketId) {
        if let Some(l) = self.conn_entry(index).and_then(|c| c.listener.take()) {
            self.leave_accept_queue(l, socket);
        }
    }

    /// Takes `socket` out of the accept queue of `listener`, if both are
    /// current (the first application call on an accepted connection).
    #[inline(never)]
    pub(super) fn leave_accept_queue(&mut self, listener: SocketId, socket: SocketId) {
        if let Ok(l) = self.index(listener) {
            if let Some(l) = self.listener_entry(l) {
                l.release(socket);
            }
        }
    }

    /// The connection `socket` names, to read.
    pub(super) fn conn(&self, socket: SocketId) -> Result<&Conn<B>, SocketError> {
        let index = self.index(socket)?;
        match &self.slots[index as usize].entry {
            Entry::Conn(c) if !c.app_closed => Ok(c),
            _ => Err(SocketError::BadSocket),
        }
    }

    /// The oldest connection waiting on `listener`, and its peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when none waits; `BadSocket` when `listener` is not a
    /// listener's handle; `InvalidArgument` for a connection's.
    pub fn accept(&mut self, listener: SocketId) -> Result<(SocketId, SocketAddr), SocketError> {
        let index = self.index(listener)?;
        let l = match &mut self.slots[index as usize].entry {
            Entry::Listener(l) => l,
            Entry::Conn(_) => return Err(SocketError::InvalidArgument),
            Entry::Free => return Err(SocketError::BadSocket),
        };
        let socket = l.pop().ok_or(SocketError::WouldBlock)?;
        let ci = self.index(socket)?;
        let c = self.conn_entry(ci).ok_or(SocketError::BadSocket)?;
        c.listener = None;
        Ok((socket, c.tuple.remote))
    }

    /// Closes `socket`. A listener stops at once: the connections waiting
    /// in its accept queue or half-open are reset (as Linux does). A
    /// connection sends its FIN after its queued data (or a reset when
    /// received data is left unread) and finishes closing in the
    /// background; its handle is invalid from now on.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle.
    pub fn close(&mut self, socket: SocketId) -> Result<(), SocketError> {
        let index = self.index(socket)?;
        match &mut self.slots[index as usize].entry {
            Entry::Free => Err(SocketError::BadSocket),
            Entry::Listener(_) => {
                self.close_listener(index, socket);
                Ok(())
            }
            Entry::Conn(c) if c.app_closed => Err(SocketError::BadSocket),
            Entry::Conn(_) => {
                self.conn_mut(socket)?.close();
                if let Some(c) = self.conn_entry(index) {
                    c.app_closed = true;
                }
                Ok(())
            }
        }
    }

    /// Resets `socket` now (RST to the peer) and frees its handle.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn abort(&mut self, socket: SocketId) -> Result<(), SocketError> {
        self.conn_mut(socket)?.abort();
        let index = socket.index;
        if let Some(c) = self.conn_entry(index) {
            c.app_closed = true;
        }
        Ok(())
    }

    pub(super) fn close_listener(&mut self, index: u32, socket: SocketId) {
        // Half-open and waiting connections of this listener: reset.
        let children: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.entry {
                Entry::Conn(c) if c.listener == Some(socket) => Some(i as u32),
                _ => None,
            })
            .collect();
        if let Some(l) = self.listener_entry(index) {
            l.drain().for_each(drop);
        }
        for i in children {
            if let Some(c) = self.conn_entry(i) {
                c.listener = None;
                c.app_closed = true;
                c.conn.abort();
            }
            self.mark(i);
        }
        self.free_slot(index);
    }

    /// A snapshot of `socket`'s connection.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn info(&self, socket: SocketId) -> Result<TcpInfo, SocketError> {
        self.conn(socket).map(|c| c.conn.info())
    }

    /// `socket`'s two ends.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn tuple(&self, socket: SocketId) -> Result<FourTuple, SocketError> {
        self.conn(socket).map(|c| c.tuple)
    }

    /// The address a listener listens on.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a connection's.
    pub fn listener_addr(&self, socket: SocketId) -> Result<SocketAddr, SocketError> {
        let index = self.index(socket)?;
        match &self.slots[index as usize].entry {
            Entry::Listener(l) => Ok(l.local()),
            _ => Err(SocketError::BadSocket),
        }
    }

    /// `socket`'s state.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn state(&self, socket: SocketId) -> Result<State, SocketError> {
        self.conn(socket).map(|c| c.conn.state())
    }

    /// Every open socket's handle and its state (`Listen` for a
    /// listener), closed-by-the-application connections included.
    pub fn iter(&self) -> impl Iterator<Item = (SocketId, State)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let id = SocketId::new(Transport::Tcp, i as u32, s.generation);
            match &s.entry {
                Entry::Free => None,
                Entry::Listener(_) => Some((id, State::Listen)),
                Entry::Conn(c) => Some((id, c.conn.state())),
            }
        })
    }
}
