// tpa renamed in Cargo.toml (`my_tpa = { package = "tpa", .. }`): every
// path into tpa, in code and in doc links, goes through `crate = ..`.

/// A VLAN tag.
#[header(crate = my_tpa)]
pub struct Vlan {
    /// Priority code point.
    pub pcp: u3,
    /// Drop eligible.
    pub dei: bool,
    /// VLAN identifier.
    pub vid: u12,
    /// The protocol of the payload.
    pub ethertype: u16,
}
