//! Packets waiting for their neighbor's link-layer address: one FIFO list
//! per neighbor, threaded through one slab of fixed size, so holding a packet
//! never allocates and the total held is bounded as well as each list.

const NIL: u32 = u32::MAX;

/// One neighbor's held packets, oldest first (the links live in the slab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HoldList {
    head: u32,
    tail: u32,
    len: u32,
}

impl HoldList {
    pub(crate) const EMPTY: HoldList = HoldList {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    /// Packets in the list.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

/// What [`HoldSlab::push`] did with a packet.
#[derive(Debug)]
pub(crate) enum Pushed<B> {
    /// Held.
    Held,
    /// Held, in place of the list's oldest packet, given back (RFC 4861
    /// 7.2.2: a new arrival replaces the oldest).
    Displaced(B),
    /// Not held: the slab is full and the list empty, or the list is full
    /// and the slab keeps the oldest. Given back.
    Refused(B),
}

/// The storage of every neighbor's held packets.
#[derive(Debug)]
pub(crate) struct HoldSlab<B> {
    packets: Box<[Option<B>]>,
    next: Box<[u32]>,
    free: u32,
    per_list: u32,
    replace_oldest: bool,
    held: usize,
}

impl<B> HoldSlab<B> {
    /// Room for `total` packets, at most `per_list` (at least 1) per list.
    /// A full list makes room by dropping its oldest packet when
    /// `replace_oldest`, and refuses the new one otherwise.
    pub(crate) fn new(total: usize, per_list: usize, replace_oldest: bool) -> Self {
        let total = total.min(NIL as usize - 1);
        let next: Box<[u32]> = (0..total)
            .map(|i| if i + 1 < total { i as u32 + 1 } else { NIL })
            .collect();
        HoldSlab {
            packets: (0..total).map(|_| None).collect(),
            next,
            free: if total == 0 { NIL } else { 0 },
            per_list: per_list.clamp(1, u32::MAX as usize) as u32,
            replace_oldest,
            held: 0,
        }
    }

    /// Packets held in all lists.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Appends `packet` to `list`. When the list is at its bound, or the
    /// slab is full and the list is not empty, the list's oldest packet
    /// makes room if the slab replaces the oldest; otherwise `packet` is
    /// refused.
    pub(crate) fn push(&mut self, list: &mut HoldList, packet: B) -> Pushed<B> {
        let full = list.len >= self.per_list || (self.free == NIL && list.len > 0);
        if full && !self.replace_oldest {
            return Pushed::Refused(packet);
        }
        let displaced = if full { self.pop(list) } else { None };
        if self.free == NIL {
            return Pushed::Refused(packet);
        }
        let i = self.free;
        self.free = self.next[i as usize];
        self.packets[i as usize] = Some(packet);
        self.next[i as usize] = NIL;
        if list.tail == NIL {
            list.head = i;
        } else {
            self.next[list.tail as usize] = i;
        }
        list.tail = i;
        list.len += 1;
        self.held += 1;
        match displaced {
            Some(old) => Pushed::Displaced(old),
            None => Pushed::Held,
        }
    }

    /// Takes the oldest packet of `list`.
    pub(crate) fn pop(&mut self, list: &mut HoldList) -> Option<B> {
        if list.head == NIL {
            return None;
        }
        let i = list.head as usize;
        list.head = self.next[i];
        if list.head == NIL {
            list.tail = NIL;
        }
        list.len -= 1;
        self.held -= 1;
        self.next[i] = self.free;
        self.free = i as u32;
        self.packets[i].take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_fifo_and_bounded_per_list_and_in_total() {
        let mut slab = HoldSlab::new(3, 2, true);
        let (mut a, mut b) = (HoldList::EMPTY, HoldList::EMPTY);
        assert!(matches!(slab.push(&mut a, 1), Pushed::Held));
        assert!(matches!(slab.push(&mut a, 2), Pushed::Held));
        // At its bound: the oldest makes room.
        assert!(matches!(slab.push(&mut a, 3), Pushed::Displaced(1)));
        assert!(matches!(slab.push(&mut b, 10), Pushed::Held));
        // The slab is full: b displaces its own oldest, a new list is refused.
        assert!(matches!(slab.push(&mut b, 11), Pushed::Displaced(10)));
        let mut c = HoldList::EMPTY;
        assert!(matches!(slab.push(&mut c, 20), Pushed::Refused(20)));
        assert_eq!((slab.held(), a.len(), b.len(), c.len()), (3, 2, 1, 0));
        assert_eq!(slab.pop(&mut a), Some(2));
        assert_eq!(slab.pop(&mut a), Some(3));
        assert_eq!(slab.pop(&mut a), None);
        assert!(matches!(slab.push(&mut c, 21), Pushed::Held));
        assert_eq!(slab.pop(&mut b), Some(11));
        assert_eq!(slab.pop(&mut c), Some(21));
        assert_eq!(slab.held(), 0);
    }

    #[test]
    fn a_slab_that_keeps_the_oldest_refuses_the_newest() {
        let mut slab = HoldSlab::new(3, 2, false);
        let (mut a, mut b) = (HoldList::EMPTY, HoldList::EMPTY);
        assert!(matches!(slab.push(&mut a, 1), Pushed::Held));
        assert!(matches!(slab.push(&mut a, 2), Pushed::Held));
        assert!(matches!(slab.push(&mut a, 3), Pushed::Refused(3)));
        assert!(matches!(slab.push(&mut b, 10), Pushed::Held));
        // The slab is full: b's next is refused too.
        assert!(matches!(slab.push(&mut b, 11), Pushed::Refused(11)));
        assert_eq!((slab.pop(&mut a), slab.pop(&mut a)), (Some(1), Some(2)));
        assert_eq!(slab.pop(&mut b), Some(10));
        assert_eq!(slab.held(), 0);
    }
}
