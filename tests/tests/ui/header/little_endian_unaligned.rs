use tpa::header;

#[header]
pub struct Desc {
    pub flags: u4,
    #[field(le)]
    pub len: u16,
    pub more: u4,
}

fn main() {}
