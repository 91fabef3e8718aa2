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
