use tpa::header;

#[header]
pub struct Wide {
    pub kind: u7,
    pub huge: u65,
}

fn main() {}
