use tpa::header;

#[header]
pub struct Named {
    pub kind: u8,
    pub name: String,
}

fn main() {}
