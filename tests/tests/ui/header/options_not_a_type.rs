use tpa::header;

// `options =` names the walker type; a call is not one.
#[header(length = words * 4, options = walk_options())]
pub struct Dynamic {
    pub words: u8,
    pub kind: u8,
    pub pad: u16,
}

fn main() {}
