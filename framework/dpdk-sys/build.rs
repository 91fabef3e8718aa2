//! Finds the system DPDK with pkg-config, compiles the C shim over its
//! static-inline functions and generates the Rust bindings into `OUT_DIR`.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

/// The oldest DPDK release tpa is written against.
const MIN_VERSION: &str = "22.11";

/// DPDK functions tpa calls (regular exported symbols).
const FUNCTIONS: &[&str] = &[
    // EAL
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_eal_process_type",
    "rte_eal_iova_mode",
    "rte_strerror",
    "rte_socket_id",
    "rte_lcore_count",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_vdev_init",
    "rte_vdev_uninit",
    "rte_ring_create",
    "rte_ring_free",
    "rte_eth_from_rings",
    "rte_mem_virt2iova",
    "rte_extmem_register",
    "rte_extmem_unregister",
    "rte_dev_dma_map",
    "rte_dev_dma_unmap",
    "rte_dev_name",
    // ethdev control path
    "rte_eth_dev_count_avail",
    "rte_eth_find_next_owned_by",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_info_get",
    "rte_eth_dev_configure",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_macaddr_get",
    "rte_eth_dev_get_mtu",
    "rte_eth_dev_set_mtu",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_eth_promiscuous_enable",
    "rte_eth_promiscuous_disable",
    "rte_eth_link_get_nowait",
    "rte_eth_dev_rss_hash_conf_get",
    "rte_eth_dev_rss_hash_update",
    "rte_eth_dev_rss_reta_query",
    "rte_eth_dev_rss_reta_update",
    // mempool / mbuf
    "rte_pktmbuf_pool_create",
    "rte_mempool_free",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_pktmbuf_free_bulk",
    // rte_flow
    "rte_flow_validate",
    "rte_flow_create",
    "rte_flow_destroy",
    "rte_flow_flush",
    "rte_flow_isolate",
    "rte_flow_conv",
    // the shim
    "tpa_.*",
];

/// Types bound even where no allowlisted function names them.
const TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_mbuf_ext_shared_info",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_eth_stats",
    "rte_eth_link",
    "rte_eth_rss_conf",
    "rte_eth_rss_reta_entry64",
    "rte_ether_addr",
    "rte_ether_hdr",
    "rte_ipv4_hdr",
    "rte_ipv6_hdr",
    "rte_tcp_hdr",
    "rte_udp_hdr",
    "rte_flow_attr",
    "rte_flow_item",
    "rte_flow_item_type",
    "rte_flow_item_eth",
    "rte_flow_item_ipv4",
    "rte_flow_item_ipv6",
    "rte_flow_item_tcp",
    "rte_flow_item_udp",
    "rte_flow_action",
    "rte_flow_action_type",
    "rte_flow_action_mark",
    "rte_flow_action_queue",
    "rte_flow_action_rss",
    "rte_flow_error",
    "rte_flow_conv_rule",
    "rte_flow_conv_op",
    "rte_proc_type_t",
    "rte_iova_mode",
];

/// Constants (macros and enum values) tpa uses.
const VARS: &[&str] = &[
    "RTE_MBUF_F_.*",
    "RTE_ETH_RX_OFFLOAD_.*",
    "RTE_ETH_TX_OFFLOAD_.*",
    "RTE_ETH_RSS_.*",
    "RTE_ETH_MQ_.*",
    "RTE_ETH_LINK_.*",
    "RTE_ETH_RETA_GROUP_SIZE",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MBUF_PRIV_ALIGN",
    "RTE_MBUF_DEFAULT_BUF_SIZE",
    "RTE_MBUF_DEFAULT_DATAROOM",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "RTE_MEMPOOL_NAMESIZE",
    "RTE_MAX_ETHPORTS",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_ETHER_ADDR_LEN",
    "RTE_ETHER_HDR_LEN",
    "RTE_ETHER_MTU",
    "RTE_ETHER_TYPE_IPV4",
    "RTE_MAX_LCORE",
    "SOCKET_ID_ANY",
    "RTE_BAD_IOVA",
    "RTE_IOVA_.*",
    "RING_F_SP_ENQ",
    "RING_F_SC_DEQ",
    "RTE_PMD_RING_MAX_RX_RINGS",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim/tpa_dpdk.h");
    println!("cargo:rerun-if-changed=shim/tpa_dpdk.c");
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let dpdk = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(_) => not_found(),
    };
    // pkg-config's cflags carry more than include paths (`-include
    // rte_config.h`, `-march=…`); the shim and bindgen need all of them.
    let cflags = pkg_config_cflags();

    // The shim first: it must come before the DPDK libraries on the link line.
    let mut shim = cc::Build::new();
    shim.file("shim/tpa_dpdk.c")
        .include("shim")
        .opt_level(3)
        .warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("tpa_dpdk_shim");

    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in &dpdk.libs {
        println!("cargo:rustc-link-lib={lib}");
    }
    // rte_vdev_init/uninit live in the vdev bus driver, which libdpdk.pc
    // lists only for static linking.
    println!("cargo:rustc-link-lib=rte_bus_vdev");
    // rte_eth_from_rings (DpdkDevice::ring_pair) lives in the net_ring
    // driver, likewise.
    println!("cargo:rustc-link-lib=rte_net_ring");

    let mut builder = bindgen::Builder::default()
        .header("shim/tpa_dpdk.h")
        .clang_arg("-Ishim")
        .clang_args(&cflags)
        .clang_macro_fallback()
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .parse_callbacks(Box::new(FlagsAreU64));
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = match builder.generate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dpdk-sys: generating bindings to DPDK failed: {e}");
            exit(1);
        }
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(e) = bindings.write_to_file(out.join("bindings.rs")) {
        eprintln!("dpdk-sys: writing bindings failed: {e}");
        exit(1);
    }
}

/// Types DPDK's 64-bit flag macros (`RTE_MBUF_F_*`, offload and RSS bits)
/// as `u64`, the type of the fields they go into.
#[derive(Debug)]
struct FlagsAreU64;

impl bindgen::callbacks::ParseCallbacks for FlagsAreU64 {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        const PREFIXES: &[&str] = &[
            "RTE_MBUF_F_",
            "RTE_ETH_RX_OFFLOAD_",
            "RTE_ETH_TX_OFFLOAD_",
            "RTE_ETH_RSS_",
        ];
        PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
            .then_some(bindgen::callbacks::IntKind::U64)
    }
}

/// The one line a user without DPDK sees.
fn not_found() -> ! {
    let msg = format!(
        "dpdk-sys: DPDK not found (pkg-config libdpdk >= {MIN_VERSION}); install it: apt-get install libdpdk-dev"
    );
    // Cargo shows `cargo::error` as the build's error line; stderr keeps it
    // visible under older Cargo too.
    println!("cargo::error={msg}");
    eprintln!("{msg}");
    exit(1)
}

/// `pkg-config --cflags libdpdk`, split into arguments.
fn pkg_config_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    match Command::new(pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        _ => not_found(),
    }
}
