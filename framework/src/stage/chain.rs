//! Chains: a tuple of stages, each taking what the one before passes on, is
//! one stage. Used for the arms of a [`Demux`](super::Demux).

use super::{earliest, CountedView, Cx, Stage, Verdict};
use crate::buf::PacketBuf;
use crate::port::Burst;

/// Implements `Stage` for a tuple: `$first.$fi` is the first stage, each
/// `$next.$i after $prev` a later one with the stage before it, `$last` the
/// end.
macro_rules! chain {
    ($first:ident . $fi:tt ; $($next:ident . $i:tt after $prev:ident),+ ; $last:ident) => {
        impl<B: PacketBuf, S, $first, $($next),+> Stage<B, S> for ($first, $($next,)+)
        where
            $first: Stage<B, S>,
            $($next: Stage<B, S, In = <$prev as Stage<B, S>>::Out>,)+
        {
            type In = <$first as Stage<B, S>>::In;
            type Out = <$last as Stage<B, S>>::Out;

            #[inline(always)]
            fn process(&mut self, input: Self::In, cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
                let verdict = self.$fi.process(input, cx);
                $(let verdict = verdict.and_then(|p| self.$i.process(p, cx));)+
                verdict
            }

            #[inline(always)]
            fn prefetch(&self, input: &Self::In) {
                self.$fi.prefetch(input);
            }

            /// The burst goes to the first stage's `process_burst`; what it
            /// passes on runs through the others one packet at a time.
            #[inline(always)]
            fn process_burst<const N: usize>(
                &mut self,
                burst: &mut Burst<Self::In, N>,
                cx: &mut Cx<'_, B, S>,
                mut next: impl FnMut(Verdict<Self::Out, B>, &mut Cx<'_, B, S>),
            ) {
                self.$fi.process_burst(burst, cx, |verdict, cx| {
                    $(let verdict = verdict.and_then(|p| self.$i.process(p, cx));)+
                    next(verdict, cx)
                });
            }

            #[inline]
            fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
                self.$fi.poll(cx);
                $(self.$i.poll(cx);)+
            }

            #[inline]
            fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
                self.$fi.fire_timers(cx) $(+ self.$i.fire_timers(cx))+
            }

            #[inline]
            fn next_deadline(&self, state: &S) -> Option<u64> {
                let deadline = self.$fi.next_deadline(state);
                $(let deadline = earliest(deadline, self.$i.next_deadline(state));)+
                deadline
            }

            fn visit_counted(&self, visit: &mut dyn FnMut(CountedView<'_>)) {
                self.$fi.visit_counted(visit);
                $(self.$i.visit_counted(visit);)+
            }
        }
    };
}

chain!(S0.0; S1.1 after S0; S1);
chain!(S0.0; S1.1 after S0, S2.2 after S1; S2);
chain!(S0.0; S1.1 after S0, S2.2 after S1, S3.3 after S2; S3);
chain!(S0.0; S1.1 after S0, S2.2 after S1, S3.3 after S2, S4.4 after S3; S4);
chain!(S0.0; S1.1 after S0, S2.2 after S1, S3.3 after S2, S4.4 after S3, S5.5 after S4; S5);
