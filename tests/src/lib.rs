//! Helpers shared by the cross-crate tests.

pub mod eal;
pub mod fixtures;
pub mod hostile;
pub mod impair;
pub mod netns;
pub mod nstat;
pub mod ops;
pub mod pattern;
pub mod share_model;
pub mod tcp_host;
pub mod tcp_peer;
pub mod tcp_sim;
pub mod tshark;

use tpa::worker::StopFlag;

/// Raises a stop flag when dropped: a test serving in another thread while
/// it checks things holds one, so that the server stops also when a check
/// panics and the test ends instead of hanging.
///
/// ```
/// use tpa::worker::StopFlag;
/// use tpa_tests::RaiseOnDrop;
/// let stop = StopFlag::new();
/// drop(RaiseOnDrop(&stop));
/// assert!(stop.is_raised());
/// ```
#[derive(Debug)]
pub struct RaiseOnDrop<'a>(pub &'a StopFlag);

impl Drop for RaiseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.raise();
    }
}
