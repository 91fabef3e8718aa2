use tpa::header;

#[header]
pub struct Twice {
    #[checksum]
    pub first: u16,
    #[checksum]
    pub second: u16,
}

fn main() {}
