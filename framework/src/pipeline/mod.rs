//! The runtime behind `#[pipeline]`.
//!
//! `#[pipeline]` turns a struct naming a port and stages into a
//! run-to-completion loop. The generated methods are short and call into this
//! module: [`Runtime::iterate`] receives a burst and runs the chain the
//! macro wrote for this composition (each verdict settled by
//! [`Tally::settle`]), then polls the application and every stage, with one
//! context for both ([`Runtime::receive`] and [`Runtime::poll`] are the two
//! steps apart, for a loop written by hand), and [`Runtime::flush`]
//! flushes the transmit and host queues. [`Runtime`] holds the bursts and counters;
//! the link traits ([`FromPort`], [`Joins`]) make a chain whose types do not
//! line up a compile error that names both stages and both types. An
//! [`Observer`] (the `#[observer]` field) sees every frame crossing the port,
//! both ways.
//!
//! The programming guide, `doc/guide/pipelines.md`, explains how to write
//! stages and declare pipelines.
//!
//! What a loop iteration does, in order:
//! 1. read the time once (`now`, the same for every packet of the burst),
//!    from the pipeline's [`TimeSource`](crate::time::TimeSource): the real
//!    clock unless set otherwise (the generated `with_time_source`);
//! 2. receive up to `burst` packets (`#[pipeline(burst = N)]`, default
//!    [`BURST_SIZE`](crate::port::BURST_SIZE)) and show them to the observer;
//! 3. give the burst to the first stage's
//!    [`process_burst`](crate::stage::Stage::process_burst), and each packet
//!    it passes on through the remaining stages, one packet at a time;
//! 4. call every stage's [`poll`](crate::stage::Stage::poll), in order;
//! 5. flush the transmit queue to the port (showing the observer each frame
//!    first) and the host queue to the host.
//!
//! Packets the port cannot take at the flush stay queued, in order, and go
//! first at the next flush; when the queue is full and the port still takes
//! nothing, further packets are dropped and counted
//! ([`QueueCounters::tx_dropped`]). Packets the last stage passes on have
//! nowhere to go: they are freed and counted in
//! [`PipelineCounters::ended`].
//!
//! # Example
//!
//! A MAC-swapping reflector over one end of an in-memory wire:
//!
//! ```
//! use tpa::buf::PacketBuf;
//! use tpa::pipeline;
//! use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
//! use tpa::port::{Burst, Port};
//! use tpa::stage::{Cx, Reason, Stage, Verdict};
//!
//! /// Sends every frame back where it came from.
//! struct MacSwap;
//! impl<B: PacketBuf> Stage<B> for MacSwap {
//!     type In = B;
//!     type Out = core::convert::Infallible;
//!     fn process(&mut self, mut frame: B, _cx: &mut Cx<'_, B>) -> Verdict<Self::Out, B> {
//!         let Some(macs) = frame.data_mut().get_mut(..12) else {
//!             return Verdict::Drop(Reason::TOO_SHORT);
//!         };
//!         let (dst, src) = macs.split_at_mut(6);
//!         dst.swap_with_slice(src);
//!         Verdict::Transmit(frame)
//!     }
//! }
//!
//! #[pipeline(burst = 32)]
//! struct Reflector {
//!     #[port]
//!     port: MemoryPort,
//!     swap: MacSwap,
//! }
//!
//! let (port, mut peer) = MemoryWire::pair(WireConfig::default()).unwrap();
//! let mut reflector = Reflector::new(port, MacSwap);
//!
//! let mut frame = peer.alloc().unwrap();
//! frame.extend_from_slice(&[[1; 6], [2; 6]].concat()).unwrap();
//! let mut tx: Burst<_> = Burst::new();
//! tx.push(frame);
//! peer.tx_burst(&mut tx);
//!
//! let iteration = reflector.run_once();
//! assert_eq!((iteration.rx, iteration.tx), (1, 1));
//! assert_eq!(reflector.stats().stage("swap").unwrap().transmitted, 1);
//!
//! let mut rx: Burst<_> = Burst::new();
//! peer.rx_burst(&mut rx);
//! assert_eq!(rx.as_slice()[0].data(), &[[2; 6], [1; 6]].concat()[..]);
//! # let pool = peer.pool().clone();
//! # drop((rx, reflector, peer));
//! # tpa::buf::BufferPool::assert_whole(&pool);
//! ```

mod link;
mod observer;
mod runtime;

#[doc = include_str!("../../../doc/guide/pipelines.md")]
#[cfg(doctest)]
pub struct GuidePipelines;

pub use link::{FromPort, Joins};
pub use observer::{NoObserver, Observer};
pub use runtime::{
    settle, HostSink, IterationStats, NoHost, Phases, PipelineCounters, PortIo, QueueCounters,
    Queues, Runtime, Tally, TxQueue, HOST_QUEUE_LEN, TX_QUEUE_LEN, TX_QUEUE_MAX,
};

/// The buffer type of port `P`; shortens the generated code.
pub type BufOf<P> = <P as crate::port::Port>::Buf;
