//! A stage that may be switched off when the pipeline is built.

use tpa::buf::PacketBuf;
use tpa::port::Burst;
use tpa::stage::{Cx, Stage, Verdict};

/// Runs the inner stage if there is one, else passes packets on untouched:
/// for stages chosen at startup (a capture file given on the command line,
/// say) without a second pipeline type. The inner stage must pass on what it
/// takes.
///
/// ```
/// use tpa_stages::optional::Optional;
/// use tpa_stages::pcap::PcapCapture;
/// let no_capture: Optional<PcapCapture> = Optional::off();
/// assert!(no_capture.inner().is_none());
/// ```
#[derive(Debug)]
pub struct Optional<S>(Option<S>);

impl<S> Optional<S> {
    /// With the stage on.
    pub fn on(stage: S) -> Self {
        Optional(Some(stage))
    }

    /// With no stage: packets pass straight on.
    pub fn off() -> Self {
        Optional(None)
    }

    /// The inner stage, if on.
    pub fn inner(&self) -> Option<&S> {
        self.0.as_ref()
    }

    /// The inner stage, writable, if on.
    pub fn inner_mut(&mut self) -> Option<&mut S> {
        self.0.as_mut()
    }
}

impl<S> From<Option<S>> for Optional<S> {
    fn from(stage: Option<S>) -> Self {
        Optional(stage)
    }
}

impl<B: PacketBuf, S, T, Inner: Stage<B, S, In = T, Out = T>> Stage<B, S> for Optional<Inner> {
    type In = T;
    type Out = T;
    const CUSTOM_REASONS: &'static [&'static str] = Inner::CUSTOM_REASONS;

    #[inline]
    fn process(&mut self, packet: T, cx: &mut Cx<'_, B, S>) -> Verdict<T, B> {
        match &mut self.0 {
            Some(stage) => stage.process(packet, cx),
            None => Verdict::Pass(packet),
        }
    }

    /// On, the inner stage sees the whole burst (its own `process_burst`);
    /// off, every packet passes on.
    #[inline]
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<T, N>,
        cx: &mut Cx<'_, B, S>,
        mut next: impl FnMut(Verdict<T, B>, &mut Cx<'_, B, S>),
    ) {
        match &mut self.0 {
            Some(stage) => stage.process_burst(burst, cx, next),
            None => {
                for packet in burst.drain() {
                    next(Verdict::Pass(packet), cx);
                }
            }
        }
    }

    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        if let Some(stage) = &mut self.0 {
            stage.poll(cx);
        }
    }

    #[inline]
    fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        match &mut self.0 {
            Some(stage) => stage.fire_timers(cx),
            None => 0,
        }
    }

    #[inline]
    fn next_deadline(&self, state: &S) -> Option<u64> {
        self.0.as_ref()?.next_deadline(state)
    }
    fn visit_counted(&self, visit: &mut dyn FnMut(tpa::stage::CountedView<'_>)) {
        if let Some(stage) = &self.0 {
            stage.visit_counted(visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Acl, Action, ACL_DENIED};
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use tpa::buf::PoolBuf;

    #[test]
    fn off_passes_and_on_runs_the_stage() {
        let bytes = [0u8; 60];
        let mut off: Optional<Acl> = Optional::off();
        assert!(matches!(
            with_cx(|cx| off.process(frame(&bytes), cx)),
            Verdict::Pass(_)
        ));
        let mut on = Optional::on(Acl::new(Action::Deny));
        assert!(
            matches!(with_cx(|cx| on.process(frame(&bytes), cx)), Verdict::Drop(r) if r == ACL_DENIED)
        );
        assert_eq!(on.inner().unwrap().default_hits(), 1);
        pool().assert_whole();
    }

    /// A stage with one timer at `at`, firing once.
    struct OneTimer {
        at: Option<u64>,
    }

    impl<B: PacketBuf, S> Stage<B, S> for OneTimer {
        type In = B;
        type Out = B;
        fn process(&mut self, packet: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
            Verdict::Pass(packet)
        }
        fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
            match self.at {
                Some(at) if at <= cx.now_ns() => {
                    self.at = None;
                    1
                }
                _ => 0,
            }
        }
        fn next_deadline(&self, _: &S) -> Option<u64> {
            self.at
        }
    }

    #[test]
    fn timers_of_the_inner_stage_are_forwarded_and_off_has_none() {
        let mut on = Optional::on(OneTimer { at: Some(5) });
        assert_eq!(Stage::<PoolBuf>::next_deadline(&on, &()), Some(5));
        assert_eq!(with_cx(|cx| on.fire_timers(cx)), 1);
        assert_eq!(Stage::<PoolBuf>::next_deadline(&on, &()), None);
        let mut off: Optional<OneTimer> = Optional::off();
        assert_eq!(Stage::<PoolBuf>::next_deadline(&off, &()), None);
        assert_eq!(with_cx(|cx| off.fire_timers(cx)), 0);
    }
}
