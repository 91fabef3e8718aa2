use tpa::header;

#[header(length = words * 8)]
pub struct Huge {
    pub kind: u16,
    pub words: u48,
}

fn main() {}
