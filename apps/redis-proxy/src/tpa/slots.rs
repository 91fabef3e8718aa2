//! A map from tpa's socket handles to the app's values, indexed by the
//! socket's slot in its table (a handle's `index` is small and dense):
//! a lookup per socket event is an index and a comparison of the whole
//! handle (its generation tells a reused slot's new socket from the old
//! one), not a hash.

use tpa::app::SocketId;

/// Values by socket handle (see the module's doc).
#[derive(Debug)]
pub(super) struct BySocket<T> {
    slots: Vec<Option<(SocketId, T)>>,
}

impl<T> Default for BySocket<T> {
    fn default() -> Self {
        BySocket { slots: Vec::new() }
    }
}

impl<T> BySocket<T> {
    /// Sets `socket`'s value (replacing whatever its slot held, another
    /// generation's included).
    pub(super) fn insert(&mut self, socket: SocketId, value: T) {
        let i = socket.index as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some((socket, value));
    }

    /// `socket`'s value, if it has one.
    pub(super) fn get(&self, socket: &SocketId) -> Option<&T> {
        match self.slots.get(socket.index as usize) {
            Some(Some((s, v))) if s == socket => Some(v),
            _ => None,
        }
    }

    /// `socket`'s value to change, if it has one.
    pub(super) fn get_mut(&mut self, socket: &SocketId) -> Option<&mut T> {
        match self.slots.get_mut(socket.index as usize) {
            Some(Some((s, v))) if s == socket => Some(v),
            _ => None,
        }
    }

    /// Takes `socket`'s value out.
    pub(super) fn remove(&mut self, socket: &SocketId) -> Option<T> {
        let slot = self.slots.get_mut(socket.index as usize)?;
        match slot {
            Some((s, _)) if s == socket => slot.take().map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::app::Transport;

    #[test]
    fn a_reused_slot_is_told_apart_by_its_generation() {
        let old = SocketId::new(Transport::Tcp, 3, 0);
        let new = SocketId::new(Transport::Tcp, 3, 1);
        let mut map = BySocket::default();
        map.insert(old, "old");
        assert_eq!(map.get(&old), Some(&"old"));
        assert_eq!(map.get(&new), None);
        assert_eq!(map.remove(&new), None);
        map.insert(new, "new");
        assert_eq!(map.get(&old), None, "the slot's old socket is replaced");
        *map.get_mut(&new).expect("the new socket") = "newer";
        assert_eq!(map.get_mut(&old), None);
        assert_eq!(map.remove(&new), Some("newer"));
        assert_eq!(map.get(&new), None);
        assert_eq!(map.remove(&new), None);
        assert_eq!(map.get(&SocketId::new(Transport::Tcp, 1000, 0)), None);
    }
}
