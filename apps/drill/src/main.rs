//! `tpa-drill FILE|DIR...`: runs packetdrill-format scripts.

fn main() {
    eprintln!("tpa-drill: not yet");
    std::process::exit(2);
}
