use super::*;

#[test]
fn table_is_sorted_and_upper_case() {
    assert!(TABLE.windows(2).all(|w| w[0].name < w[1].name));
    for c in TABLE {
        assert!(c.name.len() <= MAX_NAME);
        assert_eq!(c.name, c.name.to_ascii_uppercase());
        assert_ne!(c.arity, 0, "{}", c.name);
    }
}

#[test]
fn lookup_finds_every_command_in_any_case() {
    for c in TABLE {
        assert!(c.name.as_bytes()[0].is_ascii_uppercase(), "{}", c.name);
        assert_eq!(lookup(c.name.as_bytes()), Some(c), "{}", c.name);
        let lower = c.name.to_ascii_lowercase();
        assert_eq!(lookup(lower.as_bytes()), Some(c), "{lower}");
    }
    assert!(lookup(b"1GET").is_none());
    assert!(lookup(b"GE").is_none());
    assert!(lookup(b"GETT").is_none());
}

#[test]
fn lookup_ignores_case() {
    assert_eq!(lookup(b"get").unwrap().name, "GET");
    assert_eq!(lookup(b"mGeT").unwrap().route, Route::Split);
    assert!(lookup(b"nosuchcommand").is_none());
    assert!(lookup(b"").is_none());
    assert!(lookup(&[b'x'; 100]).is_none());
}

#[test]
fn splittable_and_refused_commands() {
    for name in ["MGET", "MSET", "DEL", "UNLINK", "EXISTS", "TOUCH"] {
        assert_eq!(
            lookup(name.as_bytes()).unwrap().route,
            Route::Split,
            "{name}"
        );
    }
    let refused = |n: &str| match lookup(n.as_bytes()).unwrap().route {
        Route::Unsupported(why) => why,
        other => panic!("{n}: {other:?}"),
    };
    assert_eq!(refused("BLPOP"), Unsupported::Blocking);
    assert_eq!(refused("SUBSCRIBE"), Unsupported::PubSub);
    assert_eq!(refused("MULTI"), Unsupported::Transaction);
    assert_eq!(refused("KEYS"), Unsupported::Keyspace);
    assert!(refused("CONFIG").message().starts_with("ERR "));
    assert!(lookup(b"get").unwrap().readonly());
    assert!(!lookup(b"set").unwrap().readonly());
}

#[test]
fn arity() {
    let get = lookup(b"GET").unwrap();
    assert!(get.arity_ok(2) && !get.arity_ok(3) && !get.arity_ok(1));
    let mget = lookup(b"MGET").unwrap();
    assert!(mget.arity_ok(2) && mget.arity_ok(9) && !mget.arity_ok(1));
}

fn key_names<'a>(name: &str, args: &[&'a [u8]]) -> Result<Vec<&'a [u8]>, KeyError> {
    let command = lookup(name.as_bytes()).unwrap();
    Ok(keys(command, args)?.into_iter().map(|i| args[i]).collect())
}

#[test]
fn key_extraction() {
    let k = |name: &str, args: &[&'static str]| {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        key_names(name, &args).map(|v| {
            v.into_iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(k("GET", &["GET", "a"]).unwrap(), ["a"]);
    assert_eq!(
        k("MGET", &["MGET", "a", "b", "c"]).unwrap(),
        ["a", "b", "c"]
    );
    assert_eq!(
        k("MSET", &["MSET", "a", "1", "b", "2"]).unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        k("MSET", &["MSET", "a", "1", "b"]),
        Err(KeyError::TooFewArguments)
    );
    assert_eq!(k("RENAME", &["RENAME", "a", "b"]).unwrap(), ["a", "b"]);
    assert_eq!(k("BLPOP", &["BLPOP", "a", "b", "0"]).unwrap(), ["a", "b"]);
    assert_eq!(
        k("EVAL", &["EVAL", "s", "2", "a", "b", "x"]).unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        k("EVAL", &["EVAL", "s", "0"]).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        k("EVAL", &["EVAL", "s", "3", "a"]),
        Err(KeyError::TooFewArguments)
    );
    assert_eq!(k("EVAL", &["EVAL", "s", "-1"]), Err(KeyError::BadCount));
    assert_eq!(
        k(
            "ZUNIONSTORE",
            &["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"]
        )
        .unwrap(),
        ["d", "a", "b"]
    );
    assert_eq!(k("PING", &["PING"]).unwrap(), Vec::<String>::new());
    assert_eq!(k("GET", &["GET"]), Err(KeyError::TooFewArguments));
}
