use tpa::header;

#[header]
pub struct Sum32 {
    pub kind: u16,
    #[checksum]
    pub sum: u32,
}

fn main() {}
