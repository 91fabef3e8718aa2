//! A model of shared, chained buffers: random sequences of allocate,
//! share, clone, drop, chain, unchain, append, prepend and linearize run
//! against a real [`PacketBuf`] backend (tpa's pool, DPDK mbufs) and a
//! plain-Rust model of who holds which segment, checking after every step
//! that each holder sees its bytes, segment count and reference count.
//!
//! The steps come from raw bytes ([`Op::decode`]) so that property tests
//! can generate and shrink them without this library depending on
//! proptest.

use std::collections::HashMap;

use tpa::buf::{linearize, BufError, PacketBuf, Shared};

/// One step of a sequence. Indices pick a holder modulo the number of
/// holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Allocate a buffer holding `len` bytes of `fill`.
    Alloc { len: u8, fill: u8 },
    /// Turn a unique holder into a shared handle.
    Share(u8),
    /// Clone a shared handle.
    Clone(u8),
    /// Drop a holder.
    Drop(u8),
    /// Drop a shared handle on another thread.
    DropElsewhere(u8),
    /// Chain a shared handle behind a unique holder.
    ChainShared { head: u8, tail: u8 },
    /// Chain a unique holder behind another.
    ChainUnique { head: u8, tail: u8 },
    /// Detach the segments after the first of a unique holder.
    Unchain(u8),
    /// Turn a shared handle back into a unique holder.
    TryUnique(u8),
    /// Append `n` bytes of `fill` to a unique holder's last segment.
    Append { at: u8, n: u8, fill: u8 },
    /// Prepend `n` bytes of `fill` to a unique holder's first segment.
    Prepend { at: u8, n: u8, fill: u8 },
    /// Copy a unique holder's chain into one segment.
    Linearize(u8),
}

impl Op {
    /// The step four random bytes stand for (chains, clones and
    /// allocations twice as likely as the rest).
    pub fn decode(kind: u8, a: u8, b: u8, c: u8) -> Op {
        match kind % 16 {
            0 => Op::Alloc { len: a, fill: b },
            1 => Op::Share(a),
            2 => Op::Clone(a),
            3 => Op::Drop(a),
            4 => Op::DropElsewhere(a),
            5 => Op::ChainShared { head: a, tail: b },
            6 => Op::ChainUnique { head: a, tail: b },
            7 => Op::Unchain(a),
            8 => Op::TryUnique(a),
            9 => Op::Append {
                at: a,
                n: b,
                fill: c,
            },
            10 => Op::Prepend {
                at: a,
                n: b % 64,
                fill: c,
            },
            11 => Op::Linearize(a),
            12 => Op::ChainShared { head: a, tail: b },
            13 => Op::ChainUnique { head: a, tail: b },
            14 => Op::Clone(a),
            _ => Op::Alloc { len: a, fill: b },
        }
    }
}

enum Handle<B: PacketBuf> {
    Unique(B),
    Shared(Shared<B>),
}

impl<B: PacketBuf> Handle<B> {
    fn buf(&self) -> &B {
        match self {
            Handle::Unique(b) => b,
            Handle::Shared(s) => s,
        }
    }
}

/// How often the interesting outcomes happened, so a test can check its
/// sequences reached them (a backend that never allocated would pass
/// every step vacuously).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Buffers allocated.
    pub allocs: u64,
    /// Chains made.
    pub chained: u64,
    /// Chains refused because the last segment was shared.
    pub chain_refused: u64,
    /// Appends refused because the last segment was shared.
    pub append_refused: u64,
    /// Shared handles made unique again.
    pub made_unique: u64,
    /// Chains copied into one segment.
    pub linearized: u64,
}

impl core::ops::AddAssign for Coverage {
    fn add_assign(&mut self, o: Coverage) {
        self.allocs += o.allocs;
        self.chained += o.chained;
        self.chain_refused += o.chain_refused;
        self.append_refused += o.append_refused;
        self.made_unique += o.made_unique;
        self.linearized += o.linearized;
    }
}

impl Coverage {
    /// Panics unless every outcome happened at least once.
    #[track_caller]
    pub fn assert_all_reached(&self) {
        let c = self;
        assert!(
            c.allocs > 0
                && c.chained > 0
                && c.chain_refused > 0
                && c.append_refused > 0
                && c.made_unique > 0
                && c.linearized > 0,
            "some outcome never happened: {c:?}"
        );
    }
}

/// The model and the real buffers side by side.
struct World<B: PacketBuf> {
    /// The bytes of every segment, by model id.
    segs: HashMap<u32, Vec<u8>>,
    next_id: u32,
    /// Every holder with the ids of the segments it holds, in order.
    holders: Vec<(Handle<B>, Vec<u32>)>,
    seen: Coverage,
}

impl<B: PacketBuf> World<B> {
    fn refs(&self, id: u32) -> usize {
        self.holders
            .iter()
            .filter(|(_, ids)| ids.contains(&id))
            .count()
    }

    fn pick(&self, i: u8) -> Option<usize> {
        (!self.holders.is_empty()).then(|| usize::from(i) % self.holders.len())
    }

    fn fresh(&mut self, bytes: Vec<u8>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.segs.insert(id, bytes);
        id
    }

    /// Every holder sees what the model says.
    fn check(&self, step: usize, op: Op) {
        for (n, (h, ids)) in self.holders.iter().enumerate() {
            let b = h.buf();
            let got: Vec<&[u8]> = b.segments().collect();
            let want: Vec<&[u8]> = ids.iter().map(|id| &self.segs[id][..]).collect();
            assert_eq!(got, want, "step {step} ({op:?}): holder {n}'s bytes");
            assert_eq!(
                b.segment_count(),
                ids.len(),
                "step {step} ({op:?}): holder {n}'s segments"
            );
            assert_eq!(
                b.total_len(),
                want.iter().map(|s| s.len()).sum::<usize>(),
                "step {step} ({op:?}): holder {n}'s total length"
            );
            assert_eq!(
                b.ref_count(),
                self.refs(ids[0]),
                "step {step} ({op:?}): holder {n}'s reference count"
            );
        }
    }
}

/// Runs `ops` against buffers from `alloc`, checking the model after every
/// step, and drops every holder at the end (the caller then checks its pool
/// is whole). Returns which outcomes the steps reached.
pub fn run<B>(ops: &[Op], mut alloc: impl FnMut() -> Option<B>) -> Coverage
where
    B: PacketBuf + Send + Sync + 'static,
{
    let mut w: World<B> = World {
        segs: HashMap::new(),
        next_id: 0,
        holders: Vec::new(),
        seen: Coverage::default(),
    };
    for (step, &op) in ops.iter().enumerate() {
        apply(&mut w, op, &mut alloc);
        w.check(step, op);
    }
    w.seen
}

fn apply<B>(w: &mut World<B>, op: Op, alloc: &mut impl FnMut() -> Option<B>)
where
    B: PacketBuf + Send + Sync + 'static,
{
    match op {
        Op::Alloc { len, fill } => {
            if w.holders.len() >= 24 {
                return;
            }
            let Some(mut b) = alloc() else { return };
            let bytes = vec![fill; usize::from(len)];
            b.append(bytes.len())
                .expect("a fresh buffer holds 255 bytes")
                .copy_from_slice(&bytes);
            let id = w.fresh(bytes);
            w.holders.push((Handle::Unique(b), vec![id]));
            w.seen.allocs += 1;
        }
        Op::Share(i) => {
            let Some(i) = w.pick(i) else { return };
            let (h, ids) = w.holders.swap_remove(i);
            let h = match h {
                Handle::Unique(b) => Handle::Shared(b.share()),
                shared => shared,
            };
            w.holders.push((h, ids));
        }
        Op::Clone(i) => {
            let Some(i) = w.pick(i) else { return };
            if let (Handle::Shared(s), ids) = &w.holders[i] {
                let c = s.try_clone().expect("far from 65535 references");
                let ids = ids.clone();
                w.holders.push((Handle::Shared(c), ids));
            }
        }
        Op::Drop(i) => {
            let Some(i) = w.pick(i) else { return };
            drop(w.holders.swap_remove(i));
        }
        Op::DropElsewhere(i) => {
            let Some(i) = w.pick(i) else { return };
            if matches!(w.holders[i].0, Handle::Shared(_)) {
                if let (Handle::Shared(s), _) = w.holders.swap_remove(i) {
                    std::thread::spawn(move || drop(s))
                        .join()
                        .expect("the dropping thread");
                }
            }
        }
        Op::ChainShared { head, tail } => {
            let (Some(h), Some(t)) = (w.pick(head), w.pick(tail)) else {
                return;
            };
            if h == t
                || !matches!(w.holders[h].0, Handle::Unique(_))
                || !matches!(w.holders[t].0, Handle::Shared(_))
            {
                return;
            }
            let last = *w.holders[h].1.last().unwrap();
            let may = w.refs(last) == 1;
            // Take the tail out; `h` moves if it was the last element.
            let (th, tids) = w.holders.swap_remove(t);
            let h = if h == w.holders.len() { t } else { h };
            let Handle::Shared(ts) = th else {
                unreachable!()
            };
            let Handle::Unique(hb) = &mut w.holders[h].0 else {
                unreachable!()
            };
            match hb.chain_shared(ts) {
                Ok(()) => {
                    assert!(may, "{op:?}: chained behind a shared segment");
                    w.holders[h].1.extend(tids);
                    w.seen.chained += 1;
                }
                Err(back) => {
                    assert!(!may, "{op:?}: refused though the last segment is unshared");
                    w.seen.chain_refused += 1;
                    w.holders.push((Handle::Shared(back), tids));
                }
            }
        }
        Op::ChainUnique { head, tail } => {
            let (Some(h), Some(t)) = (w.pick(head), w.pick(tail)) else {
                return;
            };
            if h == t
                || !matches!(w.holders[h].0, Handle::Unique(_))
                || !matches!(w.holders[t].0, Handle::Unique(_))
            {
                return;
            }
            let last = *w.holders[h].1.last().unwrap();
            let may = w.refs(last) == 1;
            let (th, tids) = w.holders.swap_remove(t);
            let h = if h == w.holders.len() { t } else { h };
            let Handle::Unique(tb) = th else {
                unreachable!()
            };
            let Handle::Unique(hb) = &mut w.holders[h].0 else {
                unreachable!()
            };
            match hb.chain(tb) {
                Ok(()) => {
                    assert!(may, "{op:?}: chained behind a shared segment");
                    w.holders[h].1.extend(tids);
                    w.seen.chained += 1;
                }
                Err(back) => {
                    assert!(!may, "{op:?}: refused though the last segment is unshared");
                    w.seen.chain_refused += 1;
                    w.holders.push((Handle::Unique(back), tids));
                }
            }
        }
        Op::Unchain(i) => {
            let Some(i) = w.pick(i) else { return };
            let (Handle::Unique(b), ids) = &mut w.holders[i] else {
                return;
            };
            let rest = b.unchain();
            assert_eq!(rest.is_some(), ids.len() > 1, "{op:?}");
            if let Some(rest) = rest {
                let rest_ids = ids.split_off(1);
                w.holders.push((Handle::Shared(rest), rest_ids));
            }
        }
        Op::TryUnique(i) => {
            let Some(i) = w.pick(i) else { return };
            if !matches!(w.holders[i].0, Handle::Shared(_)) {
                return;
            }
            let may = w.refs(w.holders[i].1[0]) == 1;
            let (h, ids) = w.holders.swap_remove(i);
            let Handle::Shared(s) = h else { unreachable!() };
            match s.try_unique() {
                Ok(b) => {
                    assert!(may, "{op:?}: unique while shared");
                    w.seen.made_unique += 1;
                    w.holders.push((Handle::Unique(b), ids));
                }
                Err(s) => {
                    assert!(!may, "{op:?}: still shared though held alone");
                    w.holders.push((Handle::Shared(s), ids));
                }
            }
        }
        Op::Append { at, n, fill } => {
            let Some(i) = w.pick(at) else { return };
            let last = *w.holders[i].1.last().unwrap();
            let shared = w.refs(last) > 1;
            let (Handle::Unique(b), _) = &mut w.holders[i] else {
                return;
            };
            match b.append(usize::from(n)) {
                Ok(room) => {
                    assert!(!shared, "{op:?}: wrote to a shared segment");
                    room.fill(fill);
                    w.segs
                        .get_mut(&last)
                        .unwrap()
                        .extend(std::iter::repeat_n(fill, usize::from(n)));
                }
                Err(BufError::Shared) => {
                    assert!(shared, "{op:?}: refused an unshared segment");
                    w.seen.append_refused += 1;
                }
                Err(BufError::NoTailroom { .. }) => assert!(!shared, "{op:?}"),
                Err(e) => panic!("{op:?}: {e}"),
            }
        }
        Op::Prepend { at, n, fill } => {
            let Some(i) = w.pick(at) else { return };
            let (Handle::Unique(b), ids) = &mut w.holders[i] else {
                return;
            };
            match b.prepend(usize::from(n)) {
                Ok(room) => {
                    room.fill(fill);
                    let seg = w.segs.get_mut(&ids[0]).unwrap();
                    seg.splice(0..0, std::iter::repeat_n(fill, usize::from(n)));
                }
                Err(BufError::NoHeadroom { .. }) => {}
                Err(e) => panic!("{op:?}: {e}"),
            }
        }
        Op::Linearize(i) => {
            let Some(i) = w.pick(i) else { return };
            let (Handle::Unique(b), ids) = &mut w.holders[i] else {
                return;
            };
            let before: Vec<u8> = b.segments().flatten().copied().collect();
            match linearize(b, &mut *alloc) {
                Ok(copied) => {
                    assert_eq!(copied, ids.len() > 1, "{op:?}");
                    if copied {
                        w.seen.linearized += 1;
                        let ids = std::mem::take(ids);
                        let id = w.fresh(before);
                        w.holders[i].1 = vec![id];
                        // The model's old ids are simply no longer held.
                        drop(ids);
                    }
                }
                Err(_) => {
                    // Unchanged (pool empty, or too long for one buffer).
                    let after: Vec<u8> = b.segments().flatten().copied().collect();
                    assert_eq!(after, before, "{op:?}: a failed copy changed the packet");
                }
            }
        }
    }
}
