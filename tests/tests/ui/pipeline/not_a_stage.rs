//! A field that is not a stage.

use tpa::pipeline;

#[pipeline]
struct Wrong<P: tpa::port::Port> {
    #[port]
    port: P,
    counter: u64,
}

fn main() {}
