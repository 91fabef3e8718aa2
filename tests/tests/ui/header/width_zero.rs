use tpa::header;

#[header]
pub struct Empty {
    pub kind: u8,
    pub nothing: u0,
}

fn main() {}
