use tpa::header;

// A fixed-length header has no option bytes, so there is nothing to walk.
#[header(options = TcpOptions)]
pub struct Fixed {
    pub kind: u8,
    pub len: u8,
}

fn main() {}
