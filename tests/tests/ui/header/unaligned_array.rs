use tpa::header;

#[header]
pub struct Skewed {
    pub version: u4,
    pub cookie: [u8; 2],
    pub rest: u4,
}

fn main() {}
