//! The heap storage of a connection's queues, kept from a connection that
//! no longer needs it (closed, or in TIME_WAIT with nothing queued) for a
//! new one: a short connection's first segments each way then allocate
//! nothing (the socket table keeps a few, see `TcpSockets`).

use std::collections::VecDeque;

use tpa::buf::PacketBuf;

use super::receive_queue;
use super::send_queue::Chunk;
use super::Connection;

/// Queues that grew beyond this many entries are not kept: a bulk
/// connection's storage would hold memory no short connection needs.
const KEEP_MAX_ENTRIES: usize = 64;

/// The empty storage of a send and a receive queue.
pub(crate) struct QueueStorage<B: PacketBuf> {
    send: VecDeque<Chunk<B>>,
    receive: receive_queue::Storage<B>,
}

impl<B: PacketBuf> Connection<B> {
    /// The storage of the send and receive queues when both are empty and
    /// small, which the connection then gives up (a queue left with none
    /// allocates again if it ever queues more: a connection in TIME_WAIT
    /// queues nothing).
    pub(crate) fn take_queue_storage(&mut self) -> Option<QueueStorage<B>> {
        if self.send_queue.len() != 0 || !self.receive_queue.is_empty() {
            return None;
        }
        let storage = QueueStorage {
            send: self.send_queue.take_storage()?,
            receive: self.receive_queue.take_storage()?,
        };
        let (send, receive) = (storage.send.capacity(), storage.receive.capacity());
        ((send > 0 || receive > 0) && send <= KEEP_MAX_ENTRIES && receive <= KEEP_MAX_ENTRIES)
            .then_some(storage)
    }

    /// Gives the connection's queues `storage` (another connection's),
    /// where they have none of their own yet.
    pub(crate) fn adopt_queue_storage(&mut self, storage: QueueStorage<B>) {
        self.send_queue.adopt_storage(storage.send);
        self.receive_queue.adopt_storage(storage.receive);
    }
}
