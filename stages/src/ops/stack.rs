//! A worker of tpa's TCP stack publishing: the parts every such worker
//! has (its port queue, TCP table, egress path and trace settings) into
//! its snapshot, then the `trace` knob's change, if any, applied to its
//! TCP table. tperf, tpa-echo and tpa-redis-proxy publish through it.

use tpa::port::Port;

use super::collect;
use super::instance::{Change, Publisher};
use super::snapshot::Counter;
use crate::egress::Egress;
use crate::tcp::TcpSockets;
use crate::trace::TraceConfig;

/// A worker's parts that its snapshot reads (besides its pipeline's
/// stages: [`collect::pipeline`]).
pub struct StackParts<'a, P: Port> {
    /// Its port queue (its own counters).
    pub port: &'a mut P,
    /// Its TCP table (counters, sockets; the trace switched on it).
    pub tcp: &'a mut TcpSockets<P::Buf>,
    /// Its egress path (neighbor caches).
    pub egress: &'a Egress<P::Buf>,
    /// The trace's settings the worker started with.
    pub trace: &'a TraceConfig,
}

impl<P: Port> StackParts<'_, P> {
    /// Fills `publisher`'s snapshot from these parts and the app's own
    /// counters `app`, publishes it at `now_ns` (`stopped`: the worker's
    /// last), and switches the trace of new connections when the knob
    /// changed (in the instance's directory).
    pub fn publish(self, publisher: &mut Publisher, now_ns: u64, app: Vec<Counter>, stopped: bool) {
        let max = publisher.max_sockets();
        let snap = publisher.snapshot();
        collect::port(snap, self.port);
        collect::tcp(snap, self.tcp, max);
        collect::neighbors(snap, self.egress, now_ns);
        snap.app = app;
        if let Some(Change::Trace(on)) = publisher.publish(now_ns, stopped) {
            let cfg = TraceConfig {
                enabled: on,
                dir: publisher.dir().to_path_buf(),
                ..self.trace.clone()
            };
            match self.tcp.enable_trace(&cfg) {
                Ok(()) => tracing::info!(on, "socket trace of new connections switched"),
                Err(e) => tracing::warn!("socket trace stays off: {e}"),
            }
        }
    }
}
