//! #[pipeline] on an enum.

use tpa::pipeline;

#[pipeline]
enum Choice {
    A,
    B,
}

fn main() {}
