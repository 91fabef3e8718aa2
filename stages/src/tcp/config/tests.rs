//! The loader end to end: every key to its field, every error path with its
//! message, environment overrides, round trips, and the guide's table.

use std::collections::BTreeSet;
use std::ffi::OsString;

use proptest::prelude::*;

use super::*;

const NO_ENV: [(&str, &str); 0] = [];

fn err(text: &str) -> String {
    match TcpConfig::from_toml(text) {
        Ok(cfg) => panic!("{text:?} was accepted as {cfg:?}"),
        Err(err) => err.to_string(),
    }
}

fn env_err(text: &str, env: &[(&str, &str)]) -> String {
    match TcpConfig::load(text, env.iter().copied()) {
        Ok(cfg) => panic!("{env:?} was accepted as {cfg:?}"),
        Err(err) => err.to_string(),
    }
}

/// Every key set to a value unlike its default; `every_key_lands_in_its_field`
/// says which field each must reach.
const EVERY_KEY: &str = r#"
[tcp]
max_sockets = 1000
backlog = 77
send_queue = "3MiB"
receive_queue = 100000
mss = 1400
nodelay = false
congestion = "newreno"
local_port_range = [40000, 50000]
write_chunk = "8KiB"
max_chain = 17
tso = false
rx_merge = false
measure_latency = true
syn_cookies = "always"
frto = false
challenge_ack_limit = 50
rack = false

[tcp.options]
window_scale = false
timestamps = false
sack = false
paws = false

[tcp.cwnd]
initial_segments = 4
max = "1MiB"
validation = false
restart_after_idle = false

[tcp.rto]
min = "10ms"
max = "60s"
initial = "500ms"

[tcp.retries]
syn = 3
data = 8

[tcp.delayed_ack]
enabled = false
timeout = "5ms"

[tcp.keepalive]
enabled = true
idle = "30s"
interval = "2s"
probes = 4

[tcp.time_wait]
duration = "5s"
max = 1234

[tcp.ooo]
max_segments = 64
worker_max_buffers = 4096
"#;

fn every_key_config() -> TcpConfig {
    TcpConfig {
        max_sockets: 1000,
        send_queue_bytes: 3 << 20,
        receive_queue_bytes: 100_000,
        ooo_max_segments: 64,
        ooo_worker_max_buffers: 4096,
        backlog: 77,
        mss: 1400,
        window_scale: false,
        timestamps: false,
        sack: false,
        paws: false,
        initial_cwnd_segments: 4,
        max_cwnd_bytes: 1 << 20,
        congestion: CongestionAlgorithm::NewReno,
        rto_min_ns: 10_000_000,
        rto_max_ns: 60_000_000_000,
        rto_initial_ns: 500_000_000,
        syn_retries: 3,
        data_retries: 8,
        delayed_ack: false,
        delayed_ack_ns: 5_000_000,
        keepalive: true,
        keepalive_idle_ns: 30_000_000_000,
        keepalive_interval_ns: 2_000_000_000,
        keepalive_probes: 4,
        time_wait_ns: 5_000_000_000,
        time_wait_max: 1234,
        tso: false,
        port_first: 40000,
        port_last: 50000,
        nodelay: false,
        write_chunk_bytes: 8 << 10,
        max_chain_buffers: 17,
        rx_merge: false,
        measure_latency: true,
        syn_cookies: SynCookieMode::Always,
        frto: false,
        cwnd_validation: false,
        slow_start_after_idle: false,
        challenge_ack_limit: 50,
        rack: false,
    }
}

#[test]
fn every_key_lands_in_its_field() {
    assert_eq!(TcpConfig::from_toml(EVERY_KEY), Ok(every_key_config()));
}

#[test]
fn the_every_key_file_changes_every_key() {
    // With `every_key_lands_in_its_field`, a key added to the layout (or a
    // mapping that crosses two fields) cannot go untested.
    let changed = every_key_config();
    for (key, _) in TcpConfig::keys() {
        let (old, new) = (
            value_text(&TcpConfig::default(), &key),
            value_text(&changed, &key),
        );
        assert_ne!(old, new, "{key} keeps its default in EVERY_KEY");
    }
}

#[test]
fn no_tcp_table_means_the_defaults_and_other_tables_are_not_ours() {
    assert_eq!(TcpConfig::from_toml(""), Ok(TcpConfig::default()));
    let other = "[net]\nip = \"10.0.0.1\"\n[dpdk]\npci = \"0000:00:05.0\"\n";
    assert_eq!(TcpConfig::from_toml(other), Ok(TcpConfig::default()));
    assert_eq!(TcpConfig::from_toml("[tcp]\n"), Ok(TcpConfig::default()));
}

#[test]
fn the_defaults_are_valid_and_documented_values() {
    let cfg = TcpConfig::default();
    assert_eq!(cfg.validate(), Ok(()));
    // Linux's values.
    assert_eq!(cfg.rto_min_ns, 200_000_000);
    assert_eq!(cfg.rto_max_ns, 120_000_000_000);
    assert_eq!((cfg.syn_retries, cfg.data_retries), (6, 15));
    assert_eq!(cfg.keepalive_idle_ns, 7_200_000_000_000);
    assert_eq!(cfg.keepalive_interval_ns, 75_000_000_000);
    assert_eq!(cfg.keepalive_probes, 9);
    assert_eq!(cfg.time_wait_ns, 60_000_000_000);
    assert_eq!((cfg.port_first, cfg.port_last), (32768, 60999));
    assert_eq!(cfg.congestion, CongestionAlgorithm::Cubic);
    // libtpa's, where Linux has none.
    assert_eq!(cfg.write_chunk_bytes, 16 << 10);
    assert_eq!(cfg.max_chain_buffers, 45);
    assert!(cfg.rx_merge && !cfg.measure_latency && cfg.paws);
    // Linux's `tcp_recovery = 1`: RACK-TLP on.
    assert!(cfg.rack);
}

#[test]
fn defaults_round_trip_through_toml() {
    let text = TcpConfig::default().to_toml();
    assert_eq!(TcpConfig::from_toml(&text), Ok(TcpConfig::default()));
}

#[test]
fn a_changed_config_round_trips_through_toml() {
    let cfg = every_key_config();
    assert_eq!(TcpConfig::from_toml(&cfg.to_toml()), Ok(cfg));
}

#[test]
fn syntax_errors_say_where() {
    assert_eq!(
        err("[tcp\n"),
        "TCP config: not valid TOML: TOML parse error at line 1, column 5\n  |\n1 | [tcp\n  |     ^\nunclosed table, expected `]`"
    );
    assert!(matches!(
        TcpConfig::from_toml("[tcp]\nmss = = 1\n")
            .unwrap_err()
            .kind(),
        ConfigErrorKind::Syntax(_)
    ));
}

#[test]
fn unknown_keys_name_the_nearest_valid_key() {
    assert_eq!(
        err("[tcp]\nrto_min = \"1s\"\n"),
        "tcp.rto_min: unknown key; the nearest valid key is tcp.rto.min"
    );
    assert_eq!(
        err("[tcp.rto]\nminimum = \"1s\"\n"),
        "tcp.rto.minimum: unknown key; the nearest valid key is tcp.rto.min"
    );
    assert_eq!(
        err("[tcp.keepalve]\nenabled = true\n"),
        "tcp.keepalve: unknown key; the nearest valid key is tcp.keepalive"
    );
    assert_eq!(
        err("[tcp]\nsack = false\n"),
        "tcp.sack: unknown key; the nearest valid key is tcp.options.sack"
    );
    assert_eq!(
        err("[tcp]\nnr_max_sock = 4\n"),
        "tcp.nr_max_sock: unknown key; the nearest valid key is tcp.max_sockets"
    );
    let e = TcpConfig::from_toml("[tcp.options]\nsak = true\n").unwrap_err();
    assert_eq!(e.key(), Some("tcp.options.sak"));
    assert_eq!(
        e.kind(),
        &ConfigErrorKind::UnknownKey {
            nearest: "tcp.options.sack".into()
        }
    );
}

#[test]
fn type_errors_name_the_key_and_the_expected_type() {
    let cases = [
        ("tcp = 5", "tcp: expected a table ([tcp]), found integer `5`"),
        (
            "[tcp]\nkeepalive = true",
            "tcp.keepalive: expected a table (keys enabled, idle, interval, probes), found boolean `true`",
        ),
        (
            "[tcp]\noptions.sack = 5",
            "tcp.options.sack: invalid type: integer `5`, expected a boolean",
        ),
        (
            "[tcp]\noptions = { sack = { a = 1 } }",
            "tcp.options.sack: invalid type: map, expected a boolean",
        ),
        (
            "[tcp]\nmax_sockets = \"many\"",
            "tcp.max_sockets: invalid type: string \"many\", expected a whole number, 0 or more",
        ),
        (
            "[tcp]\nmss = -1",
            "tcp.mss: invalid value: integer `-1`, expected a whole number, 0 or more",
        ),
        (
            "[tcp]\ncongestion = \"reno\"",
            "tcp.congestion: unknown variant `reno`, expected `newreno` or `cubic`",
        ),
        (
            "[tcp.rto]\nmin = 200",
            "tcp.rto.min: invalid type: integer `200`, expected a duration string with a unit, such as \"200ms\"",
        ),
        (
            "[tcp.rto]\nmin = \"200\"",
            "tcp.rto.min: invalid duration \"200\": it has no unit (ns, us, ms, s, min or h)",
        ),
        (
            "[tcp.keepalive]\nidle = \"2 fortnights\"",
            "tcp.keepalive.idle: invalid duration \"2 fortnights\": unknown unit \"fortnights\" (ns, us, ms, s, min or h)",
        ),
        (
            "[tcp]\nsend_queue = \"1.5MiB\"",
            "tcp.send_queue: invalid size \"1.5MiB\": unknown unit \".5MiB\" (B, KiB, MiB or GiB)",
        ),
        (
            "[tcp]\nsend_queue = true",
            "tcp.send_queue: invalid type: boolean `true`, expected a size in bytes, such as 65536 or \"64KiB\"",
        ),
        (
            "[tcp]\nreceive_queue = -4",
            "tcp.receive_queue: invalid value: integer `-4`, expected a size in bytes, such as 65536 or \"64KiB\"",
        ),
        (
            "[tcp]\nlocal_port_range = [1, 2, 3]",
            "tcp.local_port_range: invalid length 3, expected a port range, such as [32768, 60999] or \"32768-60999\"",
        ),
        (
            "[tcp]\nlocal_port_range = [1]",
            "tcp.local_port_range: invalid length 1, expected a port range, such as [32768, 60999] or \"32768-60999\"",
        ),
        (
            "[tcp]\nlocal_port_range = \"a-b\"",
            "tcp.local_port_range: invalid value: string \"a-b\", expected a port range, such as [32768, 60999] or \"32768-60999\"",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(err(text), message, "{text:?}");
        let e = TcpConfig::from_toml(text).unwrap_err();
        assert!(matches!(e.kind(), ConfigErrorKind::Type(_)), "{text:?}");
    }
}

#[test]
fn range_errors_name_the_key_and_the_range() {
    let cases = [
        ("max_sockets = 0", "tcp.max_sockets: 0 is out of range 1..=16777216"),
        ("backlog = 2000000", "tcp.backlog: 2000000 is out of range 1..=1048576"),
        ("send_queue = 512", "tcp.send_queue: 512B is out of range 1KiB..=1GiB"),
        (
            "receive_queue = \"2GiB\"",
            "tcp.receive_queue: 2GiB is out of range 1KiB..=1048560KiB",
        ),
        ("mss = 40", "tcp.mss: 40 is out of range 88..=65495"),
        ("mss = 70000", "tcp.mss: 70000 is out of range 88..=65495"),
        (
            "local_port_range = [80, 90]",
            "tcp.local_port_range: the first port, 80, is below 1024 (the well-known ports)",
        ),
        (
            "local_port_range = [1024, 70000]",
            "tcp.local_port_range: the last port, 70000, is above 65535",
        ),
        (
            "local_port_range = \"50000-40000\"",
            "tcp.local_port_range: [50000, 40000] is empty: the first port is above the last",
        ),
        ("write_chunk = 0", "tcp.write_chunk: 0B is out of range 1B..=1GiB"),
        ("max_chain = 1", "tcp.max_chain: 1 is out of range 2..=255"),
        (
            "cwnd.initial_segments = 0",
            "tcp.cwnd.initial_segments: 0 is out of range 1..=1024",
        ),
        ("cwnd.max = \"2GiB\"", "tcp.cwnd.max: 2GiB is out of range 1KiB..=1GiB"),
        (
            "mss = 1460\ncwnd.max = \"8KiB\"",
            "tcp.cwnd.max: 8KiB is below the initial window, tcp.cwnd.initial_segments (10) × tcp.mss (1460) = 14600B",
        ),
        ("rto.min = \"500us\"", "tcp.rto.min: 500us is out of range 1ms..=600s"),
        ("rto.max = \"1h\"", "tcp.rto.max: 3600s is out of range 1ms..=600s"),
        (
            "rto.min = \"3min\"",
            "tcp.rto.min: 180s is above tcp.rto.max (120s)",
        ),
        (
            "rto.initial = \"100ms\"",
            "tcp.rto.initial: 100ms is out of range 200ms..=120s",
        ),
        ("retries.syn = 0", "tcp.retries.syn: 0 is out of range 1..=127"),
        ("retries.syn = 128", "tcp.retries.syn: 128 is out of range 1..=127"),
        ("retries.data = 256", "tcp.retries.data: 256 is out of range 1..=255"),
        (
            "delayed_ack.timeout = \"500us\"",
            "tcp.delayed_ack.timeout: 500us is below the lowest allowed, 1ms",
        ),
        (
            "delayed_ack.timeout = \"0ms\"",
            "tcp.delayed_ack.timeout: 0s is not a valid time; to turn this off set tcp.delayed_ack.enabled = false",
        ),
        (
            "delayed_ack.timeout = \"500ms\"",
            "tcp.delayed_ack.timeout: 500ms is not below 500ms (RFC 9293 §3.8.6.3: an ACK is delayed less than 0.5 s)",
        ),
        (
            "keepalive.idle = \"0s\"",
            "tcp.keepalive.idle: 0s is not a valid time; to turn this off set tcp.keepalive.enabled = false",
        ),
        (
            "keepalive.idle = \"10h\"",
            "tcp.keepalive.idle: 36000s is out of range 1ms..=32767s",
        ),
        (
            "keepalive.interval = \"1us\"",
            "tcp.keepalive.interval: 1us is out of range 1ms..=32767s",
        ),
        ("keepalive.probes = 0", "tcp.keepalive.probes: 0 is out of range 1..=127"),
        (
            "time_wait.duration = \"241s\"",
            "tcp.time_wait.duration: 241s is out of range 0s..=240s",
        ),
        (
            "time_wait.max = 20000000",
            "tcp.time_wait.max: 20000000 is out of range 0..=16777216",
        ),
        (
            "ooo.max_segments = 70000",
            "tcp.ooo.max_segments: 70000 is out of range 0..=65536",
        ),
        (
            "ooo.worker_max_buffers = 5000000000",
            "tcp.ooo.worker_max_buffers: 5000000000 is out of range 0..=4294967295",
        ),
    ];
    for (body, message) in cases {
        let text = format!("[tcp]\n{body}\n");
        assert_eq!(err(&text), message, "{body:?}");
        let e = TcpConfig::from_toml(&text).unwrap_err();
        assert!(matches!(e.kind(), ConfigErrorKind::Range(_)), "{body:?}");
    }
}

#[test]
fn edges_of_the_ranges_are_accepted() {
    let text = r#"
        [tcp]
        max_sockets = 1
        mss = 88
        local_port_range = [1024, 1024]
        max_chain = 2
        receive_queue = 1073725440
        [tcp.rto]
        min = "1ms"
        max = "1ms"
        initial = "1ms"
        [tcp.delayed_ack]
        timeout = "499ms"
        [tcp.time_wait]
        duration = "0s"
        max = 0
        [tcp.ooo]
        max_segments = 0
    "#;
    let cfg = TcpConfig::from_toml(text).unwrap();
    assert_eq!((cfg.port_first, cfg.port_last), (1024, 1024));
    assert_eq!(cfg.receive_queue_bytes, MAX_WINDOW_BYTES as usize);
    assert_eq!(cfg.rto_initial_ns, 1_000_000);
    // Off switches keep their times valid but unused.
    let off = "[tcp.delayed_ack]\nenabled = false\n[tcp.keepalive]\nenabled = false\n";
    assert!(TcpConfig::from_toml(off).is_ok());
}

#[test]
fn validate_checks_a_config_built_in_code() {
    let cfg = TcpConfig {
        rto_min_ns: 5_000_000_000,
        rto_max_ns: 1_000_000_000,
        ..TcpConfig::default()
    };
    assert_eq!(
        cfg.validate().unwrap_err().to_string(),
        "tcp.rto.min: 5s is above tcp.rto.max (1s)"
    );
    let huge = TcpConfig {
        max_sockets: usize::MAX,
        ..TcpConfig::default()
    };
    assert_eq!(
        huge.validate().unwrap_err().to_string(),
        format!(
            "tcp.max_sockets: {} is out of range 1..=16777216",
            usize::MAX
        )
    );
    // Writing it does not panic; reading it back refuses it.
    assert!(TcpConfig::from_toml(&huge.to_toml()).is_err());
}

#[test]
fn environment_overrides_every_kind_of_value() {
    let env = [
        ("TPA_TCP_OPTIONS_SACK", "false"),
        ("TPA_TCP_RTO_MIN", "50ms"),
        ("TPA_TCP_KEEPALIVE_IDLE", "\"90s\""),
        ("TPA_TCP_SEND_QUEUE", "2MiB"),
        ("TPA_TCP_RECEIVE_QUEUE", "65536"),
        ("TPA_TCP_CONGESTION", "newreno"),
        ("TPA_TCP_LOCAL_PORT_RANGE", "40000-40999"),
        ("TPA_TCP_RETRIES_SYN", "2"),
        ("PATH", "/usr/bin"),
        ("TPA_OTHER", "not ours"),
    ];
    let cfg = TcpConfig::from_env(env).unwrap();
    let expected = TcpConfig {
        sack: false,
        rto_min_ns: 50_000_000,
        keepalive_idle_ns: 90_000_000_000,
        send_queue_bytes: 2 << 20,
        receive_queue_bytes: 65536,
        congestion: CongestionAlgorithm::NewReno,
        port_first: 40000,
        port_last: 40999,
        syn_retries: 2,
        ..TcpConfig::default()
    };
    assert_eq!(cfg, expected);
    let array = TcpConfig::from_env([("TPA_TCP_LOCAL_PORT_RANGE", "[2000, 3000]")]).unwrap();
    assert_eq!((array.port_first, array.port_last), (2000, 3000));
}

#[test]
fn environment_beats_the_file() {
    let file = "[tcp.rto]\nmin = \"20ms\"\nmax = \"60s\"\n";
    let cfg = TcpConfig::load(file, [("TPA_TCP_RTO_MIN", "30ms")]).unwrap();
    assert_eq!(
        (cfg.rto_min_ns, cfg.rto_max_ns),
        (30_000_000, 60_000_000_000)
    );
    assert_eq!(
        TcpConfig::load(file, NO_ENV).unwrap().rto_min_ns,
        20_000_000
    );
}

#[test]
fn environment_errors_name_the_variable() {
    assert_eq!(
        env_err("", &[("TPA_TCP_RTO_MN", "1s")]),
        "TPA_TCP_RTO_MN: names no TCP key; the nearest valid variable is TPA_TCP_RTO_MIN"
    );
    assert_eq!(
        env_err("", &[("TPA_TCP_KEEPALIVE", "true")]),
        "TPA_TCP_KEEPALIVE: names no TCP key; the nearest valid variable is TPA_TCP_KEEPALIVE_IDLE"
    );
    assert_eq!(
        env_err("", &[("TPA_TCP_OPTIONS_SACK", "maybe")]),
        "tcp.options.sack (from TPA_TCP_OPTIONS_SACK): invalid type: string \"maybe\", expected a boolean"
    );
    assert_eq!(
        env_err("", &[("TPA_TCP_RTO_MIN", "200")]),
        "tcp.rto.min (from TPA_TCP_RTO_MIN): invalid type: integer `200`, expected a duration string with a unit, such as \"200ms\""
    );
    assert_eq!(
        env_err("[tcp.rto]\nmax = \"1s\"\n", &[("TPA_TCP_RTO_MIN", "2s")]),
        "tcp.rto.min (from TPA_TCP_RTO_MIN): 2s is above tcp.rto.max (1s)"
    );
    // A range error on a key the file set says no variable.
    assert_eq!(
        env_err("[tcp.rto]\nmin = \"2s\"\n", &[("TPA_TCP_RTO_MAX", "1s")]),
        "tcp.rto.min: 2s is above tcp.rto.max (1s)"
    );
}

#[test]
fn a_non_unicode_override_is_refused() {
    use std::os::unix::ffi::OsStringExt;
    let env = [(
        OsString::from("TPA_TCP_CONGESTION"),
        OsString::from_vec(vec![0x63, 0xff, 0x62]),
    )];
    let e = TcpConfig::from_env(env).unwrap_err();
    assert_eq!(e.kind(), &ConfigErrorKind::NotUnicode);
    assert_eq!(e.variable_name(), Some("TPA_TCP_CONGESTION"));
    assert_eq!(
        e.to_string(),
        "tcp.congestion (from TPA_TCP_CONGESTION): the value is not valid Unicode"
    );
    // Non-Unicode variables outside the prefix are none of our business.
    let other = [(
        OsString::from_vec(vec![0x41, 0xff]),
        OsString::from_vec(vec![0xff]),
    )];
    assert_eq!(TcpConfig::from_env(other), Ok(TcpConfig::default()));
}

#[test]
fn every_key_has_its_own_variable() {
    let keys = TcpConfig::keys();
    let variables: BTreeSet<&String> = keys.iter().map(|(_, v)| v).collect();
    assert_eq!(variables.len(), keys.len(), "{keys:?}");
    for (key, variable) in &keys {
        let expected = key.to_ascii_uppercase().replace('.', "_");
        assert_eq!(variable, &format!("TPA_{expected}"));
    }
}

/// The value of `key` in `cfg` as the config file writes it.
fn value_text(cfg: &TcpConfig, key: &str) -> String {
    let text = cfg.to_toml();
    let (table, leaf) = match key.strip_prefix("tcp.").unwrap().rsplit_once('.') {
        Some((sub, leaf)) => (format!("[tcp.{sub}]"), leaf.to_string()),
        None => (
            "[tcp]".to_string(),
            key.strip_prefix("tcp.").unwrap().to_string(),
        ),
    };
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_table = line == table;
        } else if in_table {
            if let Some(value) = line.strip_prefix(&format!("{leaf} = ")) {
                return value.to_string();
            }
        }
    }
    panic!("{key} not in\n{text}");
}

#[test]
fn the_guide_documents_every_key_with_its_variable_and_default() {
    let guide = include_str!("../../../../doc/guide/tcp-config.md");
    let rows: Vec<&str> = guide.lines().filter(|l| l.starts_with("| `tcp.")).collect();
    let keys = TcpConfig::keys();
    assert_eq!(rows.len(), keys.len(), "one row per key");
    for (key, variable) in keys {
        let row = rows
            .iter()
            .find(|row| row.starts_with(&format!("| `{key}` ")))
            .unwrap_or_else(|| panic!("{key} has no row in doc/guide/tcp-config.md"));
        assert!(row.contains(&format!("`{variable}`")), "{key}: {row}");
        let default = value_text(&TcpConfig::default(), &key);
        assert!(
            row.contains(&format!("`{default}`")),
            "{key}: default {default} missing in {row}"
        );
    }
}

/// Every `tcp.*` knob of libtpa's `tpa.cfg` (its `tcp_cfg_specs`).
const LIBTPA_KNOBS: [&str; 23] = [
    "nr_max_sock",
    "pkt_max_chain",
    "usr_snd_mss",
    "time_wait",
    "keepalive",
    "delayed_ack",
    "tso",
    "rx_merge",
    "opt_ts",
    "opt_ws",
    "opt_sack",
    "retries",
    "syn_retries",
    "rcv_queue_size",
    "snd_queue_size",
    "cwnd_init",
    "cwnd_max",
    "rcv_ooo_limit",
    "drop_ooo_threshold",
    "measure_latency",
    "rto_min",
    "write_chunk_size",
    "local_port_range",
];

#[test]
fn the_guide_maps_every_libtpa_knob_to_a_key() {
    let guide = include_str!("../../../../doc/guide/tcp-config.md");
    let libtpa_column: Vec<&str> = guide
        .lines()
        .filter(|l| l.starts_with("| `tcp."))
        .map(|row| row.trim_end_matches('|').rsplit('|').next().unwrap_or(""))
        .collect();
    for knob in LIBTPA_KNOBS {
        let name = format!("`tcp.{knob}`");
        assert!(
            libtpa_column.iter().any(|cell| cell.contains(&name)),
            "libtpa's tcp.{knob} has no key in doc/guide/tcp-config.md"
        );
    }
}

/// A valid config with every field drawn from its range.
fn any_valid_config() -> impl Strategy<Value = TcpConfig> {
    let sizes = (
        1usize..=1 << 24,
        1usize..=1 << 20,
        1024usize..=1 << 30,
        1024usize..=MAX_WINDOW_BYTES as usize,
        prop_oneof![Just(0u16), MIN_MSS as u16..=MAX_MSS as u16],
        (1024u16..=65535, 0u16..=1000),
        1usize..=1 << 30,
        2u32..=255,
    );
    let times = (
        1_000_000u64..=600_000_000_000,
        1_000_000u64..=600_000_000_000,
        0u64..=1_000,
        1_000_000u64..500_000_000,
        1_000_000u64..=32_767_000_000_000,
        1_000_000u64..=32_767_000_000_000,
        0u64..=240_000_000_000,
    );
    let counts = (
        1u32..=1024,
        1u32..=1 << 30,
        1u32..=127,
        1u32..=255,
        1u32..=127,
        0usize..=1 << 24,
        0usize..=1 << 16,
        0usize..=u32::MAX as usize,
    );
    let switches = proptest::collection::vec(any::<bool>(), 15);
    let cookies = prop_oneof![
        Just(SynCookieMode::Off),
        Just(SynCookieMode::OnOverflow),
        Just(SynCookieMode::Always),
    ];
    (sizes, times, counts, switches, cookies).prop_map(|(s, t, c, b, syn_cookies)| {
        let (rto_a, rto_b) = (t.0.min(t.1), t.0.max(t.1));
        let mss = s.4;
        let cwnd_floor = u32::from(mss) * c.0;
        TcpConfig {
            max_sockets: s.0,
            backlog: s.1,
            send_queue_bytes: s.2,
            receive_queue_bytes: s.3,
            mss,
            port_first: s.5 .0,
            port_last: s.5 .0.saturating_add(s.5 .1),
            write_chunk_bytes: s.6,
            max_chain_buffers: s.7,
            rto_min_ns: rto_a,
            rto_max_ns: rto_b,
            rto_initial_ns: rto_a + (rto_b - rto_a) / 1000 * t.2,
            delayed_ack_ns: t.3,
            keepalive_idle_ns: t.4,
            keepalive_interval_ns: t.5,
            time_wait_ns: t.6,
            initial_cwnd_segments: c.0,
            max_cwnd_bytes: c.1.max(1024).max(cwnd_floor),
            syn_retries: c.2,
            data_retries: c.3,
            keepalive_probes: c.4,
            time_wait_max: c.5,
            ooo_max_segments: c.6,
            ooo_worker_max_buffers: c.7,
            window_scale: b[0],
            timestamps: b[1],
            sack: b[2],
            paws: b[3],
            nodelay: b[4],
            tso: b[5],
            rx_merge: b[6],
            measure_latency: b[7],
            delayed_ack: b[8],
            keepalive: b[9],
            frto: b[11],
            cwnd_validation: b[12],
            slow_start_after_idle: b[13],
            challenge_ack_limit: (c.1 % 1_000_001),
            rack: b[14],
            congestion: if b[10] {
                CongestionAlgorithm::Cubic
            } else {
                CongestionAlgorithm::NewReno
            },
            syn_cookies,
        }
    })
}

proptest! {
    /// proptest prints the failing config (and keeps the seed in
    /// proptest-regressions) when a case fails.
    #[test]
    fn any_valid_config_round_trips(cfg in any_valid_config()) {
        prop_assert_eq!(cfg.validate(), Ok(()));
        prop_assert_eq!(TcpConfig::from_toml(&cfg.to_toml()), Ok(cfg));
    }
}
