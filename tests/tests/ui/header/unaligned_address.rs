use tpa::header;

#[header]
pub struct Skewed {
    pub flags: u3,
    pub addr: std::net::Ipv4Addr,
    pub rest: u5,
}

fn main() {}
