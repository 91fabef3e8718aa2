use tpa::header;

/// Converts to a `u8` but not from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OneWay;

impl From<OneWay> for u8 {
    fn from(_: OneWay) -> u8 {
        0
    }
}

#[header]
pub struct Typed {
    #[field(u8)]
    pub kind: OneWay,
    pub len: u8,
}

fn main() {}
