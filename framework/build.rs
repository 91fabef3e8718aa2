//! With feature `af_xdp`: compiles the AF_XDP port's XDP program
//! (src/port/af_xdp/tpa_xdp.bpf.c) with clang into `$OUT_DIR/tpa_xdp.o`,
//! which the port embeds and loads at run time. Needs clang and
//! libbpf-dev (`bpf/bpf_helpers.h`); `TPA_CLANG` names another clang.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TPA_CLANG");
    if env::var_os("CARGO_FEATURE_AF_XDP").is_none() {
        return;
    }
    let src = "src/port/af_xdp/tpa_xdp.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("tpa_xdp.o");
    let clang = env::var("TPA_CLANG").unwrap_or_else(|_| "clang".to_owned());
    // Debian keeps asm/types.h, which linux/types.h includes, under the
    // host's multiarch directory, which clang does not search for -target bpf.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_owned());
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(&multiarch)
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to compile {src} ({s}); feature af_xdp needs clang and libbpf-dev"),
        Err(e) => panic!("cannot run {clang} for {src}: {e}; feature af_xdp needs clang and libbpf-dev (apt-get install clang libbpf-dev)"),
    }
}
