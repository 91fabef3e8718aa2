use tpa::header;

#[header]
pub struct Tagged<T> {
    pub kind: u8,
    pub tag: T,
}

fn main() {}
