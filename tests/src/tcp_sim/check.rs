//! The invariants after a run: every connection finished (no socket stuck,
//! both tables empty: TIME_WAIT ran out on the virtual clock), the bytes
//! each end read are the peer's stream (all of it, unless the scenario
//! allows the connection to fail, and then with the error it allows), one
//! `Closed` after each error and no event after it, and no call failed
//! that should not. The pool's wholeness is checked by [`run`](super::run).

use tpa::app::SocketError;

use super::app::{EndState, CLIENT, SERVER};
use super::scenario::{CloseOrder, Scenario};
use super::Outcome;

/// How the connections of a passing run ended, for the batch's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Ends that sent and read everything and closed.
    pub completed: u32,
    /// Ends that ended with `TimedOut`.
    pub timed_out: u32,
    /// Ends that ended with `ConnectionReset`.
    pub reset: u32,
    /// Ends that aborted.
    pub aborted: u32,
    /// Ends that finished without everything and without an error (the
    /// peer aborted or timed out after they closed; a server end the
    /// partition kept from being accepted).
    pub cut_short: u32,
    /// Virtual time of the run, ms.
    pub virtual_ms: u64,
    /// Frames the receivers' FCS check dropped.
    pub fcs_drops: u64,
    /// Neighbor entries given up after unanswered probes.
    pub neighbors_failed: u64,
}

impl Verdict {
    /// Adds `other`'s counts; keeps the longest virtual time.
    pub fn add(&mut self, other: &Verdict) {
        self.completed += other.completed;
        self.timed_out += other.timed_out;
        self.reset += other.reset;
        self.aborted += other.aborted;
        self.cut_short += other.cut_short;
        self.fcs_drops += other.fcs_drops;
        self.neighbors_failed += other.neighbors_failed;
        self.virtual_ms = self.virtual_ms.max(other.virtual_ms);
    }
}

/// Checks `outcome` against `scenario`; the first broken invariants, or
/// how the connections ended.
pub fn check(scenario: &Scenario, outcome: &Outcome) -> Result<Verdict, String> {
    let mut bad = Vec::new();
    if let Some(s) = &outcome.stuck {
        bad.push(format!("stuck: {s}"));
    }
    bad.extend(outcome.world.violations.iter().cloned());
    let long_partition = scenario.partition.as_ref().is_some_and(|p| p.long);
    let mut v = Verdict {
        virtual_ms: outcome.virtual_ms,
        fcs_drops: outcome.fcs_drops,
        neighbors_failed: outcome.neighbors_failed,
        ..Verdict::default()
    };
    for (i, c) in outcome.world.conns.iter().enumerate() {
        let abort = match c.plan.close {
            CloseOrder::Abort { client, .. } => Some(if client { CLIENT } else { SERVER }),
            _ => None,
        };
        for side in [CLIENT, SERVER] {
            let end = &c.ends[side];
            let name = format!(
                "conn {i} {}",
                if side == CLIENT { "client" } else { "server" }
            );
            let mut fail = |what: String| bad.push(format!("{name}: {what}"));
            if let Some(at) = end.mismatch {
                fail(format!("byte {at} of the stream differs"));
            }
            if end.received > end.recv_len {
                fail(format!("read {} bytes of {}", end.received, end.recv_len));
            }
            // A call may meet the connection's failure before its event
            // (the error itself, or NotConnected from a shutdown).
            let call_errors: Vec<_> = end
                .call_errors
                .iter()
                .filter(|_| end.errors.is_empty())
                .collect();
            if !call_errors.is_empty() {
                fail(format!("calls failed: {call_errors:?}"));
            }
            if end.errors.len() > 1 {
                fail(format!("several errors: {:?}", end.errors));
            }
            if end.closed_events > 1 {
                fail(format!("{} Closed events", end.closed_events));
            }
            // Which error the scenario allows this end.
            let allowed: &[SocketError] = match (abort, long_partition) {
                (Some(a), false) if a == side => &[],
                (Some(a), true) if a == side => &[SocketError::TimedOut],
                // The reset may be lost and every probe after it go
                // unanswered (3 keepalive probes): then it times out.
                (Some(_), false) => &[SocketError::ConnectionReset, SocketError::TimedOut],
                (Some(_), true) => &[SocketError::ConnectionReset, SocketError::TimedOut],
                (None, true) => &[SocketError::TimedOut],
                (None, false) => &[],
            };
            let complete = end.sent == end.send_len && end.received == end.recv_len;
            match end.errors.first() {
                Some(e) => {
                    if !allowed.contains(e) {
                        fail(format!("error {e:?}, allowed {allowed:?}"));
                    }
                    if end.closed_events != 1 {
                        fail(format!(
                            "error {e:?} and {} Closed events",
                            end.closed_events
                        ));
                    }
                    match e {
                        SocketError::TimedOut => v.timed_out += 1,
                        SocketError::ConnectionReset => v.reset += 1,
                        _ => {}
                    }
                }
                None if end.aborted => v.aborted += 1,
                None if end.closed_events > 0 => {
                    fail("Closed without an error (the handle was still open)".into())
                }
                None if complete && end.handle_closed => v.completed += 1,
                None => {
                    // Cut short without an error: only when the peer
                    // failed the connection, after this end closed its
                    // handle (or never was accepted).
                    let peer = &c.ends[1 - side];
                    let peer_failed = peer.aborted || !peer.errors.is_empty();
                    let never_accepted = side == SERVER && end.socket.is_none();
                    let ok = (!allowed.is_empty() || peer_failed)
                        && (end.handle_closed || never_accepted)
                        && (abort.is_some() || long_partition);
                    if ok {
                        v.cut_short += 1;
                    } else {
                        fail(format!("unfinished without an error: {}", describe(end)));
                    }
                }
            }
        }
    }
    if bad.is_empty() {
        Ok(v)
    } else {
        Err(bad.join("\n"))
    }
}

fn describe(e: &EndState) -> String {
    format!(
        "sent {}/{} received {}/{} eof {} shut {} closed {} connected {} readable events {}",
        e.sent,
        e.send_len,
        e.received,
        e.recv_len,
        e.eof,
        e.shut,
        e.handle_closed,
        e.connected,
        e.readable_events
    )
}
