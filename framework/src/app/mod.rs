//! The application, inline in the loop.
//!
//! An [`App`] is a field of a `#[pipeline]` struct (marked `#[app]`),
//! monomorphized into the loop like the stages. Protocol stages (UDP, TCP)
//! record what happened to sockets as [`Event`]s in the pipeline state's
//! [`Events`] part; after the stages ran, the loop hands each event to the
//! app's handler for it ([`App::readable`], [`App::writable`],
//! [`App::error`], …), then calls [`App::poll`] for the app's own work.
//! The app reads and writes through the protocols' socket functions, which
//! take the same [`Cx`]: a reply written in a handler goes through the
//! egress path at once and leaves at this iteration's flush.
//!
//! One iteration, in order: receive a burst → the stages → deliver (the
//! handlers) → the app's poll → protocol output (the stages' `poll`) → due
//! timers (the stages' `fire_timers`) → flush the transmit queue.
//!
//! An application that owns its loop uses the pipeline's generated
//! `run_once` and then its generated `with_cx`, draining [`Events`] itself: the
//! poll-style handle (see `doc/guide/apps.md`).

mod error;
mod event;

#[doc = include_str!("../../../doc/guide/apps.md")]
#[cfg(doctest)]
pub struct GuideApps;

pub use error::SocketError;
pub use event::{Event, EventKind, Events, SocketId, Transport, EVENTS_CAPACITY};

use crate::buf::PacketBuf;
use crate::stage::Cx;
use crate::state::Part;

/// An application called inline by the pipeline's loop, for buffers `B`
/// and pipeline state `S` (which holds the sockets and the [`Events`]).
///
/// Every handler has a default that does nothing, so an app writes only
/// those it needs.
///
/// ```
/// use tpa::app::{App, Events, SocketId};
/// use tpa::stage::Cx;
/// use tpa::state::Part;
///
/// /// Counts readable events.
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl<B: tpa::buf::PacketBuf, S: Part<Events>> App<B, S> for Counter {
///     fn readable(&mut self, _socket: SocketId, _cx: &mut Cx<'_, B, S>) {
///         self.0 += 1;
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an application for buffers `{B}` and state `{S}`",
    label = "not an `App<{B}, {S}>`",
    note = "the `#[app]` field of a `#[pipeline]` implements `tpa::app::App<B, S>`; its state `S` must hold a `tpa::app::Events` field"
)]
pub trait App<B: PacketBuf, S: Part<Events>> {
    /// A listening socket accepted connection `socket`.
    #[inline]
    fn accepted(&mut self, listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        let _ = (listener, socket, cx);
    }

    /// `socket` has data (or datagrams) to read.
    #[inline]
    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        let _ = (socket, cx);
    }

    /// `socket` can take more data after it refused some.
    #[inline]
    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        let _ = (socket, cx);
    }

    /// The peer of `socket` finished sending (TCP FIN).
    #[inline]
    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        let _ = (socket, cx);
    }

    /// Something `socket` sent failed (no route, neighbor unreachable, the
    /// peer's port closed, …).
    #[inline]
    fn error(&mut self, socket: SocketId, error: SocketError, cx: &mut Cx<'_, B, S>) {
        let _ = (socket, error, cx);
    }

    /// `socket` is closed; its handle is no longer valid.
    #[inline]
    fn closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        let _ = (socket, cx);
    }

    /// The app's own work, once per iteration after the handlers: sending
    /// on a schedule, a client's next request. Returns how much it did (0
    /// when idle), as the stages' timers do.
    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        let _ = cx;
        0
    }

    /// When the app next needs [`poll`](App::poll) called, if it waits for
    /// a time rather than for packets.
    #[inline]
    fn next_deadline(&self) -> Option<u64> {
        None
    }
}

/// Hands every pending event to `app`'s handler for it, in order, events
/// raised by the handlers included; returns how many were handled. The
/// deliver phase of the generated loop.
#[inline]
pub fn deliver<B: PacketBuf, S: Part<Events>, A: App<B, S>>(
    app: &mut A,
    cx: &mut Cx<'_, B, S>,
) -> usize {
    let mut handled = 0;
    while let Some(event) = cx.part::<Events>().pop() {
        handled += 1;
        dispatch(app, event, cx);
    }
    handled
}

/// Calls the handler of `event`.
#[inline]
pub fn dispatch<B: PacketBuf, S: Part<Events>, A: App<B, S>>(
    app: &mut A,
    event: Event,
    cx: &mut Cx<'_, B, S>,
) {
    let socket = event.socket;
    match event.kind {
        EventKind::Accepted { listener } => app.accepted(listener, socket, cx),
        EventKind::Readable => app.readable(socket, cx),
        EventKind::Writable => app.writable(socket, cx),
        EventKind::PeerClosed => app.peer_closed(socket, cx),
        EventKind::Error(e) => app.error(socket, e, cx),
        EventKind::Closed => app.closed(socket, cx),
    }
}

/// The application of a pipeline without an `#[app]` field.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoApp;

impl<B: PacketBuf, S: Part<Events>> App<B, S> for NoApp {}
