//! The plain flag: nothing rare under way on the loss-recovery and
//! reassembly side, in one byte the fast paths test instead of each
//! field.
//!
//! "Plain" means: no SACK scoreboard, no recovery state (PRR, undo), no
//! F-RTO, the controller outside fast recovery, no loss probe in flight,
//! no FIN held out of order, nothing in the reassembly queue, no
//! timeout since the last progress ([`all_plain`] spells it out).
//! [`Connection::plain`] is *false whenever the connection is not*
//! plain: every place that starts one of those states clears it
//! ([`note_rare`]), and it is set again only by looking
//! ([`settle_plain`], after each segment, where those states end). A
//! stale `false` only sends a segment the long way; a stale `true` would
//! be wrong, so the fast paths assert the long form under
//! `cfg(any(test, debug_assertions))`, where the seeded simulations run
//! every rare state.
//!
//! [`all_plain`]: Connection::all_plain
//! [`note_rare`]: Connection::note_rare
//! [`settle_plain`]: Connection::settle_plain

use tpa::buf::PacketBuf;

use super::super::cc::CongestionControl;
use super::Connection;

impl<B: PacketBuf> Connection<B> {
    /// The long form of the plain flag: no scoreboard, recovery, F-RTO,
    /// probe, out-of-order FIN or data, or timeout under way.
    pub(super) fn all_plain(&self) -> bool {
        self.sack.is_none()
            && self.recovery.is_none()
            && self.frto.is_none()
            && !self.cc.in_recovery()
            && self.rack.as_deref().is_none_or(|r| r.probe.is_none())
            && self.ooo_fin.is_none()
            && self.reassembly.is_empty()
            && self.retries == 0
    }

    /// Whether nothing rare is under way (see the module): one test for
    /// [`all_plain`](Self::all_plain)'s eight, which it implies (checked
    /// under test and debug builds).
    #[inline]
    pub(crate) fn plain(&self) -> bool {
        #[cfg(any(test, debug_assertions))]
        assert!(!self.plain || self.all_plain(), "plain flag left set");
        self.plain
    }

    /// One of the rare states starts: the fast paths take the long way
    /// until [`settle_plain`](Self::settle_plain) finds all of them over.
    #[inline]
    pub(super) fn note_rare(&mut self) {
        self.plain = false;
        self.refresh_predicting();
    }

    /// After a segment (where recoveries end, gaps fill, probes are
    /// answered): the flag set again once every rare state is over.
    #[inline]
    pub(super) fn settle_plain(&mut self) {
        if !self.plain {
            self.plain = self.all_plain();
            self.refresh_predicting();
        }
    }
}
