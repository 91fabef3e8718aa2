use tpa::header;

#[header]
pub struct Short {
    pub kind: u8,
    pub flags: u3,
}

fn main() {}
