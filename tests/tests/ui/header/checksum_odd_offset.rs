use tpa::header;

#[header]
pub struct Skewed {
    pub kind: u8,
    #[checksum]
    pub checksum: u16,
    pub pad: u8,
}

fn main() {}
