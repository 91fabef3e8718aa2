use tpa::header;

#[header]
pub struct Nothing;

fn main() {}
