use tpa::header;

// Little-endian order only means something for whole-byte integers.
#[header]
pub struct Desc {
    #[field(le)]
    pub len: u12,
    pub flags: u4,
}

fn main() {}
