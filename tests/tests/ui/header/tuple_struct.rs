use tpa::header;

#[header]
pub struct Pair(u8, u8);

fn main() {}
