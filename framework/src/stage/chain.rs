//! Chains: a tuple of stages, each taking what the one before passes on, is
//! one stage. Used for the arms of a [`Demux`](super::Demux).

use super::{Cx, Stage, Verdict};
use crate::buf::PacketBuf;

/// Implements `Stage` for a tuple: `$s.$i` are the stages in order, `$first`
/// and `$last` the ends, and each `$next after $prev` pair a link.
macro_rules! chain {
    ($($s:ident . $i:tt),+ ; $first:ident ; $last:ident ; $($next:ident after $prev:ident),+) => {
        impl<B: PacketBuf, $($s),+> Stage<B> for ($($s,)+)
        where
            $first: Stage<B>,
            $($next: Stage<B, In = <$prev as Stage<B>>::Out>,)+
        {
            type In = <$first as Stage<B>>::In;
            type Out = <$last as Stage<B>>::Out;

            #[inline(always)]
            fn process(&mut self, input: Self::In, cx: &mut Cx<'_, B>) -> Verdict<Self::Out, B> {
                let verdict = Verdict::Pass(input);
                $(let verdict = verdict.and_then(|p| self.$i.process(p, cx));)+
                verdict
            }

            #[inline]
            fn poll(&mut self, cx: &mut Cx<'_, B>) {
                $(self.$i.poll(cx);)+
            }
        }
    };
}

chain!(S0.0, S1.1; S0; S1; S1 after S0);
chain!(S0.0, S1.1, S2.2; S0; S2; S1 after S0, S2 after S1);
chain!(S0.0, S1.1, S2.2, S3.3; S0; S3; S1 after S0, S2 after S1, S3 after S2);
chain!(S0.0, S1.1, S2.2, S3.3, S4.4; S0; S4; S1 after S0, S2 after S1, S3 after S2, S4 after S3);
chain!(S0.0, S1.1, S2.2, S3.3, S4.4, S5.5; S0; S5;
    S1 after S0, S2 after S1, S3 after S2, S4 after S3, S5 after S4);
