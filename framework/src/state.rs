//! Pipeline state: the tables stages share, lent to them part by part.
//!
//! A pipeline's `#[state]` field holds what several stages and the
//! application use together (the neighbor cache, the socket tables, the
//! interface's addresses, readiness events). The generated loop owns it and
//! lends it to every stage call through [`Cx`]. A stage
//! does not name the state type: it is generic over it and states what it
//! needs as bounds,
//!
//! - [`Part<T>`]: one part of type `T`;
//! - [`Parts<(T, U)>`](Parts), [`Parts<(T, U, V)>`](Parts): several parts at
//!   once, each borrowed mutably at the same time. The borrows are disjoint
//!   because they are different fields, which the derive checks at compile
//!   time: no runtime borrow flag, no `RefCell`.
//!
//! `#[derive(State)]` on a struct with named fields of distinct types
//! implements them all. A stage under test uses a state of its own, often
//! a struct of just the parts it needs.
//!
//! A part with work of its own once per loop iteration, whatever the number
//! of stages that use it ([`Polled`]: TCP's sockets flush their output and
//! fire their timers), is marked `#[polled]`; the derive then implements
//! [`PolledState`], which the generated loop calls once, after the stages'
//! polls and timers, and [`PollsPart`], which the stages that leave that
//! work to the state require.
//!
//! ```
//! use tpa::state::{Part, Parts, State};
//!
//! #[derive(Default)]
//! struct Sockets(Vec<u16>);
//! #[derive(Default)]
//! struct Routes(Vec<u32>);
//!
//! #[derive(State, Default)]
//! struct Tables {
//!     sockets: Sockets,
//!     routes: Routes,
//! }
//!
//! /// Code that needs both parts at once names them in a bound.
//! fn bind_first_route<S: Parts<(Sockets, Routes)>>(state: &mut S) {
//!     let (sockets, routes) = state.parts();
//!     sockets.0.push(routes.0.first().copied().unwrap_or(0) as u16);
//! }
//!
//! let mut tables = Tables::default();
//! Part::<Routes>::part_mut(&mut tables).0.push(7);
//! bind_first_route(&mut tables);
//! assert_eq!(tables.sockets.0, [7]);
//! ```

pub use tpa_macros::State;

use crate::buf::PacketBuf;
use crate::stage::Cx;

/// A state that holds a `T`, reachable by its type.
#[diagnostic::on_unimplemented(
    message = "the pipeline state `{Self}` has no part of type `{T}`",
    label = "no `{T}` field in `{Self}`",
    note = "a stage or app generic over the state needs the bound `S: Part<{T}>`; the pipeline's `#[state]` struct (deriving `tpa::state::State`) needs a field of type `{T}`; a pipeline without `#[state]` has the state `()`, which has no parts"
)]
pub trait Part<T> {
    /// The part, to read.
    fn part(&self) -> &T;
    /// The part, to change.
    fn part_mut(&mut self) -> &mut T;
}

/// A list of part types (a tuple of two or three) and the mutable borrows
/// [`Parts::parts`] hands out for it.
pub trait PartList {
    /// One `&mut` per part, in the order of the list.
    type Mut<'a>
    where
        Self: 'a;
}

impl<A, B> PartList for (A, B) {
    type Mut<'a>
        = (&'a mut A, &'a mut B)
    where
        Self: 'a;
}

impl<A, B, C> PartList for (A, B, C) {
    type Mut<'a>
        = (&'a mut A, &'a mut B, &'a mut C)
    where
        Self: 'a;
}

/// A state that lends the parts of list `L` at the same time.
#[diagnostic::on_unimplemented(
    message = "the pipeline state `{Self}` cannot lend the parts `{L}` at once",
    label = "`{Self}` lacks one of `{L}`",
    note = "a stage or app generic over the state needs the bound `S: Parts<{L}>`; the pipeline's `#[state]` struct (deriving `tpa::state::State`) needs one field of each type in `{L}`, all different; a pipeline without `#[state]` has the state `()`, which has no parts"
)]
pub trait Parts<L: PartList> {
    /// Every part of `L`, each borrowed mutably.
    fn parts(&mut self) -> L::Mut<'_>;
}

/// A part with work of its own once per loop iteration, whatever the
/// number of stages that use it: protocol output and timers of tables
/// several stages share (TCP's sockets, which an IPv4 and an IPv6 branch
/// both feed, are flushed once, not once per branch).
///
/// The state calls it when the part's field is marked `#[polled]`
/// (`#[derive(State)]`, see [`PolledState`]). Its functions take no `self`:
/// the part is inside the state the context lends (`Part::<T>::part(state)`).
pub trait Polled<B: PacketBuf, S> {
    /// Protocol output not driven by a received packet (what the
    /// application wrote, ACKs due); called once per iteration after every
    /// stage's [`Stage::poll`](crate::stage::Stage::poll). What it queues
    /// leaves at the iteration's flush.
    fn poll(cx: &mut Cx<'_, B, S>);
    /// Fires the part's timers due at `cx.now_ns()`, after every stage's
    /// [`Stage::fire_timers`](crate::stage::Stage::fire_timers); returns how
    /// many fired.
    fn fire_timers(cx: &mut Cx<'_, B, S>) -> usize;
    /// When the part next needs [`fire_timers`](Self::fire_timers) called
    /// (nanoseconds of the pipeline's clock), if ever.
    fn next_deadline(state: &S) -> Option<u64>;
}

/// The state's own work in a loop iteration: the [`Polled`] work of each of
/// its parts marked `#[polled]`, in field order, each once. The generated
/// loop calls it after the stages' polls and timers
/// ([`Phases::state`](crate::pipeline::Phases::state)).
/// `#[derive(State)]` implements it (doing nothing when no field is
/// marked); the state `()` of a pipeline without `#[state]` has no work.
#[diagnostic::on_unimplemented(
    message = "the pipeline state `{Self}` does not say which of its parts are polled",
    label = "not a `PolledState<{B}>`",
    note = "derive `tpa::state::State` for the pipeline's `#[state]` struct: it implements `PolledState` for its `#[polled]` fields"
)]
pub trait PolledState<B: PacketBuf>: Sized {
    /// Every polled part's [`Polled::poll`].
    fn poll(cx: &mut Cx<'_, B, Self>);
    /// Every polled part's [`Polled::fire_timers`]; returns how many fired.
    fn fire_timers(cx: &mut Cx<'_, B, Self>) -> usize;
    /// The earliest of the polled parts' [`Polled::next_deadline`].
    fn next_deadline(&self) -> Option<u64>;
}

impl<B: PacketBuf> PolledState<B> for NoState {
    #[inline(always)]
    fn poll(_cx: &mut Cx<'_, B, Self>) {}
    #[inline(always)]
    fn fire_timers(_cx: &mut Cx<'_, B, Self>) -> usize {
        0
    }
    #[inline(always)]
    fn next_deadline(&self) -> Option<u64> {
        None
    }
}

/// A state that polls its part `T` ([`Polled`]) once per iteration: the
/// field is marked `#[polled]`. A stage that leaves a part's output and
/// timers to the state (TCP's input and its sockets) requires it, so a
/// state that lacks the mark does not compile.
#[diagnostic::on_unimplemented(
    message = "the pipeline state `{Self}` does not poll its part `{T}`",
    label = "`{T}` not polled by `{Self}`",
    note = "mark the field of type `{T}` in the `#[state]` struct `#[polled]`: the state then runs its output and timers once per loop iteration"
)]
pub trait PollsPart<T> {}

/// The state of a pipeline without a `#[state]` field.
pub type NoState = ();

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct A(u32);
    #[derive(Debug, Default, PartialEq)]
    struct B(u32);
    #[derive(Debug, Default, PartialEq)]
    struct C(u32);

    #[derive(State, Default)]
    struct Three {
        a: A,
        b: B,
        c: C,
    }

    fn bump<S: Parts<(C, A, B)>>(s: &mut S) {
        let (c, a, b) = s.parts();
        c.0 += a.0 + b.0;
        a.0 += 1;
        b.0 += 2;
    }

    #[test]
    fn parts_are_the_fields_in_the_order_asked() {
        let mut s = Three {
            a: A(1),
            b: B(10),
            ..Three::default()
        };
        bump(&mut s);
        assert_eq!((s.a.0, s.b.0, s.c.0), (2, 12, 11));
        let (b, a) = Parts::<(B, A)>::parts(&mut s);
        std::mem::swap(&mut a.0, &mut b.0);
        assert_eq!((Part::<A>::part(&s), Part::<B>::part(&s)), (&A(12), &B(2)));
    }
}
