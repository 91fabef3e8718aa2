//! The random step sequences of the shareable-buffer property tests.

use proptest::prelude::*;
use tpa_tests::share_model::Op;

/// Up to 160 steps of [`Op`], decoded from random bytes (so they shrink).
pub fn op_sequences() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..160)
        .prop_map(|raw| {
            raw.into_iter()
                .map(|(k, a, b, c)| Op::decode(k, a, b, c))
                .collect()
        })
}
