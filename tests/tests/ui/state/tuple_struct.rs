//! `#[derive(State)]` on a tuple struct: parts need field names.

use tpa::state::State;

#[derive(Default)]
struct Routes(Vec<u32>);

#[derive(State)]
struct Tables(Routes, u64);

fn main() {}
