//! An option `#[state(...)]` does not know.

use tpa::state::State;

#[derive(Default)]
struct Routes(Vec<u32>);

#[derive(State)]
#[state(bogus)]
struct Tables {
    routes: Routes,
}

fn main() {}
