use tpa::header;

#[header(size = 4)]
pub struct Args {
    pub kind: u8,
}

fn main() {}
