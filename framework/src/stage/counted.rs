//! A stage that keeps its own counters.

use super::{CountedView, Cx, Stage, StageStats, Verdict};
use crate::buf::PacketBuf;
use crate::port::Burst;

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
pub struct Counted<T> {
    /// The wrapped stage.
    pub stage: T,
    /// Its verdicts so far, and what its `poll` and timers sent.
    pub stats: StageStats,
    /// Its name in the stats ([`Stage::visit_counted`]).
    pub name: &'static str,
}

impl<T> Counted<T> {
    /// Wraps `stage` with zeroed counters.
    pub fn new(stage: T) -> Self {
        Counted::named(short_type_name::<T>(), stage)
    }

    /// Wraps `stage` with zeroed counters, named `name` in the stats.
    pub fn named(name: &'static str, stage: T) -> Self {
        Counted {
            stage,
            stats: StageStats::default(),
            name,
        }
    }
}

/// `T`'s name without its path and generic arguments (`TcpInput`).
fn short_type_name<T>() -> &'static str {
    let full = core::any::type_name::<T>();
    let bare = full.split('<').next().unwrap_or(full);
    bare.rsplit("::").next().unwrap_or(bare)
}

impl<B: PacketBuf, S, T: Stage<B, S>> Stage<B, S> for Counted<T> {
    type In = T::In;
    type Out = T::Out;
    const CUSTOM_REASONS: &'static [&'static str] = T::CUSTOM_REASONS;

    #[inline(always)]
    fn process(&mut self, input: T::In, cx: &mut Cx<'_, B, S>) -> Verdict<T::Out, B> {
        let verdict = self.stage.process(input, cx);
        self.stats.record(&verdict);
        verdict
    }

    #[inline(always)]
    fn prefetch(&self, input: &T::In) {
        self.stage.prefetch(input);
    }

    #[inline(always)]
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<T::In, N>,
        cx: &mut Cx<'_, B, S>,
        mut next: impl FnMut(Verdict<T::Out, B>, &mut Cx<'_, B, S>),
    ) {
        let stats = &mut self.stats;
        self.stage.process_burst(burst, cx, |verdict, cx| {
            stats.record(&verdict);
            next(verdict, cx)
        });
    }

    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        let before = cx.port().tx_offered();
        self.stage.poll(cx);
        self.stats.originated += cx.port().tx_offered() - before;
    }

    #[inline]
    fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        let before = cx.port().tx_offered();
        let fired = self.stage.fire_timers(cx);
        self.stats.originated += cx.port().tx_offered() - before;
        fired
    }

    #[inline]
    fn next_deadline(&self, state: &S) -> Option<u64> {
        self.stage.next_deadline(state)
    }

    fn visit_counted(&self, visit: &mut dyn FnMut(CountedView<'_>)) {
        visit(CountedView {
            name: self.name,
            stats: &self.stats,
            custom_reasons: T::CUSTOM_REASONS,
        });
        self.stage.visit_counted(visit);
    }
}
