//! RFC 5961's budget of challenge ACKs, shared by a table's connections.

use super::SplitMix;

/// RFC 5961 §7's limit on challenge ACKs across all connections of a
/// table, as Linux's `tcp_challenge_ack_limit` since CVE-2016-5696: each
/// one-second window gets a budget drawn at random from [limit / 2,
/// 3 × limit / 2), so an off-path attacker cannot count the ACKs spent
/// (a fixed, shared budget told it whether its guess drew one).
#[derive(Debug, Clone)]
pub(super) struct ChallengeAckBudget {
    /// The mean budget per second (0: no limit).
    limit: u32,
    /// When the current window began (None: none yet).
    window_start_ns: Option<u64>,
    /// Challenge ACKs the current window still allows.
    left: u32,
    /// Its own random stream, so the table's other draws (ports,
    /// timestamp offsets) do not depend on how many challenges came.
    rng: SplitMix,
}

impl ChallengeAckBudget {
    pub(super) fn new(limit: u32, seed: u64) -> Self {
        ChallengeAckBudget {
            limit,
            window_start_ns: None,
            left: 0,
            rng: SplitMix(seed ^ 0x6368_616c_6c65_6e67),
        }
    }

    /// Takes one challenge ACK from the budget; false when it is spent.
    pub(super) fn allow(&mut self, now_ns: u64) -> bool {
        if self.limit == 0 {
            return true;
        }
        let expired = self
            .window_start_ns
            .is_none_or(|start| now_ns.saturating_sub(start) >= 1_000_000_000);
        if expired {
            self.window_start_ns = Some(now_ns);
            let half = self.limit / 2;
            self.left = half + (self.rng.next() % u64::from(self.limit)) as u32;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}
