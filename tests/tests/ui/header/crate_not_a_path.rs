use tpa::header;

#[header(crate = "tpa")]
pub struct Pad {
    pub zero: u8,
}

fn main() {}
