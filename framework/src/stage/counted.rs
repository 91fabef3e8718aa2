//! A stage that keeps its own counters.

use super::{Cx, Stage, StageStats, Verdict};
use crate::buf::PacketBuf;

/// Wraps a stage and counts its verdicts, for stages inside combinators
/// (a [`Demux`](super::Demux) arm, a chain) whose verdicts the pipeline
/// only sees as the combinator's.
///
/// ```
/// use tpa::stage::{Counted, StageStats};
/// struct Noop;
/// let c = Counted::new(Noop);
/// assert_eq!(c.stats, StageStats::default());
/// ```
#[derive(Debug, Default)]
pub struct Counted<S> {
    /// The wrapped stage.
    pub stage: S,
    /// Its verdicts so far.
    pub stats: StageStats,
}

impl<S> Counted<S> {
    /// Wraps `stage` with zeroed counters.
    pub fn new(stage: S) -> Self {
        Counted {
            stage,
            stats: StageStats::default(),
        }
    }
}

impl<B: PacketBuf, S: Stage<B>> Stage<B> for Counted<S> {
    type In = S::In;
    type Out = S::Out;
    const CUSTOM_REASONS: &'static [&'static str] = S::CUSTOM_REASONS;

    #[inline(always)]
    fn process(&mut self, input: S::In, cx: &mut Cx<'_, B>) -> Verdict<S::Out, B> {
        let verdict = self.stage.process(input, cx);
        self.stats.record(&verdict);
        verdict
    }

    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B>) {
        self.stage.poll(cx)
    }
}
