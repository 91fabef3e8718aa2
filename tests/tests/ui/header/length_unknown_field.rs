use tpa::header;

#[header(length = hlen * 4)]
pub struct Tcpish {
    pub port: u16,
    pub data_offset: u4,
    pub reserved: u4,
}

fn main() {}
