//! `#[derive(State)]` on an enum: a state holds all its parts at once.

use tpa::state::State;

#[derive(State)]
enum Tables {
    Routes(Vec<u32>),
    Neighbors(Vec<u64>),
}

fn main() {}
