//! When each resolving neighbor next needs attention: an indexed binary
//! min-heap of entry slots by deadline, of fixed capacity, so setting,
//! moving or clearing one slot's deadline is O(log n) and finding the
//! earliest is O(1).

const NONE: u32 = u32::MAX;

/// Deadlines of slots `0..capacity`, at most one per slot.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines {
    /// `(deadline_ns, slot)`, a min-heap on the deadline.
    heap: Vec<(u64, u32)>,
    /// Each slot's position in `heap`, or `NONE`.
    position: Box<[u32]>,
}

impl Deadlines {
    pub(crate) fn new(capacity: usize) -> Self {
        Deadlines {
            heap: Vec::with_capacity(capacity),
            position: vec![NONE; capacity].into_boxed_slice(),
        }
    }

    /// The earliest deadline and its slot.
    #[inline]
    pub(crate) fn first(&self) -> Option<(u64, u32)> {
        self.heap.first().copied()
    }

    /// Sets (or moves) the deadline of `slot`.
    pub(crate) fn set(&mut self, slot: u32, deadline_ns: u64) {
        let p = self.position[slot as usize];
        if p == NONE {
            self.heap.push((deadline_ns, slot));
            let last = self.heap.len() - 1;
            self.position[slot as usize] = last as u32;
            self.up(last);
        } else {
            self.heap[p as usize].0 = deadline_ns;
            let p = self.up(p as usize);
            self.down(p);
        }
    }

    /// Clears the deadline of `slot`, if it has one.
    pub(crate) fn clear(&mut self, slot: u32) {
        let p = self.position[slot as usize];
        if p == NONE {
            return;
        }
        self.position[slot as usize] = NONE;
        let last = self
            .heap
            .pop()
            .expect("a slot with a position is in the heap");
        let p = p as usize;
        if p < self.heap.len() {
            self.heap[p] = last;
            self.position[last.1 as usize] = p as u32;
            let p = self.up(p);
            self.down(p);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.position[self.heap[a].1 as usize] = a as u32;
        self.position[self.heap[b].1 as usize] = b as u32;
    }

    fn up(&mut self, mut i: usize) -> usize {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].0 <= self.heap[i].0 {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
        i
    }

    fn down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.heap.len() && self.heap[l].0 < self.heap[least].0 {
                least = l;
            }
            if r < self.heap.len() && self.heap[r].0 < self.heap[least].0 {
                least = r;
            }
            if least == i {
                return;
            }
            self.swap(i, least);
            i = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_deadline_is_always_the_least_set() {
        let mut d = Deadlines::new(16);
        let mut model = [None::<u64>; 16];
        let mut x: u64 = 0x9e37_79b9;
        for step in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = (x % 16) as u32;
            if x.is_multiple_of(3) {
                d.clear(slot);
                model[slot as usize] = None;
            } else {
                let at = (x >> 8) % 1000;
                d.set(slot, at);
                model[slot as usize] = Some(at);
            }
            let least = model.iter().flatten().min().copied();
            assert_eq!(d.first().map(|f| f.0), least, "step {step}");
            if let Some((at, slot)) = d.first() {
                assert_eq!(model[slot as usize], Some(at), "step {step}");
            }
        }
    }
}
