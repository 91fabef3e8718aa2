use super::*;

const FULL: &str = "
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: \"{}\"
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  redis_auth: secret
  redis_db: 3
  server_retry_timeout: 2000
  server_failure_limit: 1
  timeout: 400
  backlog: 1024
  preconnect: true
  tcpkeepalive: true
  client_connections: 100
  server_connections: 2
  servers:
   - 127.0.0.1:6379:1 one
   - 127.0.0.1:6380:2
   - /tmp/redis.sock:1 sock
beta:
  listen: /tmp/beta.sock 0666
  redis: true
  servers:
   - 127.0.0.1:6381:1
";

#[test]
fn reads_every_key() {
    let pools = parse(FULL).unwrap();
    assert_eq!(pools.len(), 2);
    let a = &pools[0];
    assert_eq!(a.name, "alpha");
    assert_eq!(
        a.listen,
        Listen::Tcp {
            host: "127.0.0.1".into(),
            port: 22121
        }
    );
    assert_eq!(a.hash, HashFunction::Fnv1a_64);
    assert_eq!(a.hash_tag, Some(*b"{}"));
    assert_eq!(a.distribution, DistributionKind::Ketama);
    assert!(a.auto_eject_hosts && a.redis && a.preconnect && a.tcpkeepalive);
    assert_eq!(a.redis_auth.as_deref(), Some("secret"));
    assert_eq!(
        (
            a.redis_db,
            a.server_retry_timeout_ms,
            a.server_failure_limit
        ),
        (3, 2000, 1)
    );
    assert_eq!(
        (
            a.timeout_ms,
            a.backlog,
            a.client_connections,
            a.server_connections
        ),
        (Some(400), 1024, 100, 2)
    );
    assert_eq!(a.servers.len(), 3);
    assert_eq!(a.servers[0].ketama_name(), "one");
    assert_eq!(a.servers[1].ketama_name(), "127.0.0.1:6380");
    assert_eq!(a.servers[1].weight, 2);
    assert_eq!(
        a.servers[2].address,
        ServerAddress::Unix {
            path: "/tmp/redis.sock".into()
        }
    );
    assert_eq!(
        pools[1].listen,
        Listen::Unix {
            path: "/tmp/beta.sock".into(),
            mode: Some(0o666)
        }
    );
}

#[test]
fn defaults_are_nutcrackers() {
    let pools = parse("p:\n  listen: 0.0.0.0:1\n  servers:\n   - 10.0.0.1:6379:1\n").unwrap();
    let p = &pools[0];
    assert_eq!(p.hash, HashFunction::Fnv1a_64);
    assert_eq!(p.distribution, DistributionKind::Ketama);
    assert_eq!(p.hash_tag, None);
    assert_eq!(p.timeout_ms, None);
    assert_eq!(p.backlog, 512);
    assert_eq!(p.client_connections, 0);
    assert!(!p.redis && !p.preconnect && !p.tcpkeepalive && !p.auto_eject_hosts);
    assert_eq!(p.redis_db, 0);
    assert_eq!(p.server_connections, 1);
    assert_eq!(p.server_retry_timeout_ms, 30_000);
    assert_eq!(p.server_failure_limit, 2);
}

fn error_of(text: &str) -> ConfigError {
    parse(text).unwrap_err()
}

#[test]
fn errors_name_pool_and_key() {
    let base = "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:1\n";
    let cases = [
        ("  hash: sha1\n", "hash"),
        ("  distribution: rendezvous\n", "distribution"),
        ("  hash_tag: \"{\"\n", "hash_tag"),
        ("  backlog: -1\n", "backlog"),
        ("  preconnect: yes please\n", "preconnect"),
        ("  server_connections: 0\n", "server_connections"),
        ("  redis_auth: x\n", "redis_auth"),
        ("  bogus: 1\n", "bogus"),
    ];
    for (line, key) in cases {
        let e = error_of(&format!("{base}{line}"));
        assert_eq!(e.pool.as_deref(), Some("p"), "{line}");
        assert_eq!(e.key.as_deref(), Some(key), "{line}: {e}");
        assert!(e.to_string().starts_with(&format!("pool 'p', key '{key}'")));
    }
    let bad_servers = [
        "p:\n  listen: 127.0.0.1:1\n",
        "p:\n  listen: 127.0.0.1:1\n  servers: []\n",
        "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2\n",
        "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:0\n",
        "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:x:1\n",
        "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:1 a\n   - 127.0.0.1:3:1 a\n",
    ];
    for text in bad_servers {
        assert_eq!(error_of(text).key.as_deref(), Some("servers"), "{text}");
    }
    assert_eq!(
        error_of("p:\n  servers:\n   - 127.0.0.1:2:1\n")
            .key
            .as_deref(),
        Some("listen")
    );
    assert_eq!(
        error_of("p:\n  listen: nope\n  servers:\n   - 127.0.0.1:2:1\n")
            .key
            .as_deref(),
        Some("listen")
    );
    assert!(error_of(": : :").pool.is_none());
    assert!(error_of("- a\n- b\n").pool.is_none());
}

#[test]
fn cluster_pools() {
    let text = "
c:
  listen: 0.0.0.0:7400
  redis_cluster: true
  hash_tag: \"{}\"
  timeout: 300
  redis_cluster_refresh: 2500
  redis_cluster_max_redirects: 3
  servers:
   - 10.0.0.1:7000:1
   - 10.0.0.2:7000:1 second
plain:
  listen: 0.0.0.0:7401
  servers:
   - 10.0.0.1:6379:1
";
    let pools = parse(text).unwrap();
    let c = &pools[0];
    let options = c.cluster.unwrap();
    assert_eq!(
        options,
        ClusterOptions {
            refresh_interval_ms: 2500,
            max_redirects: 3
        }
    );
    assert!(c.redis, "a cluster pool is a redis pool without saying so");
    assert_eq!(
        c.cluster_seeds(),
        vec![
            crate::cluster::NodeAddr::new("10.0.0.1", 7000),
            crate::cluster::NodeAddr::new("10.0.0.2", 7000)
        ]
    );
    let router = options.router_config(c.timeout_ms);
    assert_eq!(router.refresh_interval.as_millis(), 2500);
    assert_eq!(router.refresh_timeout.as_millis(), 300);
    assert_eq!(router.max_redirects, 3);
    assert_eq!(pools[1].cluster, None);
    assert!(pools[1].cluster_seeds().is_empty());
    let defaults =
        parse("c:\n  listen: 0.0.0.0:1\n  redis_cluster: true\n  servers:\n   - h:7000:1\n")
            .unwrap();
    assert_eq!(
        defaults[0].cluster,
        Some(ClusterOptions {
            refresh_interval_ms: 10_000,
            max_redirects: 5
        })
    );
}

#[test]
fn cluster_pools_refuse_what_makes_no_sense() {
    let base = "p:\n  listen: 127.0.0.1:1\n  redis_cluster: true\n  servers:\n   - 127.0.0.1:2:1\n";
    let cases = [
        ("  hash: murmur\n", "hash"),
        ("  distribution: modula\n", "distribution"),
        ("  hash_tag: \"::\"\n", "hash_tag"),
        ("  auto_eject_hosts: false\n", "auto_eject_hosts"),
        ("  server_retry_timeout: 100\n", "server_retry_timeout"),
        ("  server_failure_limit: 1\n", "server_failure_limit"),
        ("  redis: false\n", "redis"),
        ("  redis_db: 2\n", "redis_db"),
        ("  redis_cluster_refresh: 0\n", "redis_cluster_refresh"),
        (
            "  redis_cluster_max_redirects: 0\n",
            "redis_cluster_max_redirects",
        ),
        (
            "  redis_cluster_max_redirects: 300\n",
            "redis_cluster_max_redirects",
        ),
        ("   - /tmp/redis.sock:1\n", "servers"),
    ];
    for (line, key) in cases {
        let e = error_of(&format!("{base}{line}"));
        assert_eq!(e.pool.as_deref(), Some("p"), "{line}");
        assert_eq!(e.key.as_deref(), Some(key), "{line}: {e}");
    }
    // The extension's keys need redis_cluster: true.
    let plain = "p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:1\n";
    for line in [
        "  redis_cluster_refresh: 100\n",
        "  redis_cluster_max_redirects: 2\n",
    ] {
        let e = error_of(&format!("{plain}{line}"));
        assert!(
            e.to_string().contains("only with redis_cluster: true"),
            "{e}"
        );
    }
    let e = error_of(&format!("{plain}  redis_cluster: maybe\n"));
    assert_eq!(e.key.as_deref(), Some("redis_cluster"));
    // Explicitly off is a nutcracker pool.
    let off = parse(&format!("{plain}  redis_cluster: false\n")).unwrap();
    assert_eq!(off[0].cluster, None);
}
