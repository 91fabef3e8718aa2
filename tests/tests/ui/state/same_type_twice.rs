//! Two fields of one type: `Part<T>` would not know which to lend.

use tpa::state::State;

#[derive(Default)]
struct Table(Vec<u32>);

#[derive(State)]
struct Tables {
    routes: Table,
    neighbors: Table,
    count: u64,
}

fn main() {}
