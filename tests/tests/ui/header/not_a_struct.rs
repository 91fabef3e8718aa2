use tpa::header;

#[header]
pub enum Kind {
    A,
    B,
}

fn main() {}
