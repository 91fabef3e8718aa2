use tpa::header;

#[header]
pub struct Clash {
    pub kind: u8,
    pub payload: u8,
}

fn main() {}
