use super::*;
use proptest::prelude::*;

fn whole(buf: &[u8]) -> (Frame<'_>, usize) {
    match parse(buf, &Limits::default(), true).unwrap() {
        Parsed::Frame(f, n) => (f, n),
        Parsed::NeedMore => panic!("need more for {buf:?}"),
    }
}

#[test]
fn parses_commands_and_replies() {
    let (f, n) = whole(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest");
    assert_eq!(n, 20);
    assert_eq!(
        f,
        Frame::Array(Some(vec![
            Frame::Bulk(Some(b"GET")),
            Frame::Bulk(Some(b"k"))
        ]))
    );
    assert_eq!(whole(b"$-1\r\n").0, Frame::Bulk(None));
    assert_eq!(whole(b":-42\r\n").0, Frame::Integer(-42));
    assert_eq!(
        whole(b"%1\r\n+a\r\n#t\r\n").0,
        Frame::Map(vec![Frame::Simple(b"a"), Frame::Boolean(true)])
    );
    assert_eq!(
        whole(b"GET  \"a b\" 'c'\r\n").0,
        Frame::Inline(vec![b"GET".as_slice(), b"a b", b"c"])
    );
}

#[test]
fn whole_frames_scan_as_they_do_byte_by_byte() {
    // Whole requests and bulk replies take the scanner's one-pass path;
    // fed a byte at a time they take the general one: both agree, errors
    // included.
    let l = Limits {
        max_bulk: 10,
        max_elements: 4,
        max_depth: 2,
        max_line: 32,
    };
    let frames: [&[u8]; 12] = [
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest",
        b"*0\r\n",
        b"*1\r\n$0\r\n\r\n*1\r\n",
        b"$3\r\nabc\r\n$1\r\n",
        b"$-1\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$3\r\nab\r\n",
        b"*1\r\n$11\r\nhello world\r\n",
        b"*5\r\n",
        b"*2\r\n:1\r\n$1\r\na\r\n",
        b"*+1\r\n$1\r\na\r\n",
        b"$99999999999999999999\r\n",
    ];
    for wire in frames {
        let mut whole = Scanner::new(l, true);
        let at_once = whole.scan(wire);
        let mut parts = Scanner::new(l, true);
        let mut by_byte = Ok(None);
        for cut in 0..=wire.len() {
            by_byte = parts.scan(&wire[..cut]);
            if !matches!(by_byte, Ok(None)) {
                break;
            }
        }
        assert_eq!(at_once, by_byte, "{:?}", String::from_utf8_lossy(wire));
    }
}

#[test]
fn bad_and_oversized_input_are_errors() {
    let l = Limits {
        max_bulk: 10,
        max_elements: 4,
        max_depth: 2,
        max_line: 16,
    };
    let err = |b: &[u8]| parse(b, &l, false).unwrap_err();
    assert_eq!(err(b"$11\r\n"), ParseError::BulkTooLong(11));
    assert_eq!(err(b"*5\r\n"), ParseError::TooManyElements(5));
    assert_eq!(err(b"*1\r\n*1\r\n*1\r\n"), ParseError::TooDeep);
    assert_eq!(err(b"$-2\r\n"), ParseError::BadLength(-2));
    assert_eq!(err(b"$x\r\n"), ParseError::BadNumber);
    assert_eq!(err(b"$1\r\nab\r\n"), ParseError::MissingCrlf);
    assert_eq!(err(b"?\r\n"), ParseError::UnknownType(b'?'));
    assert_eq!(err(b"+aaaaaaaaaaaaaaaaaaaaaaaaaa"), ParseError::LineTooLong);
    let big = parse(b":99999999999999999999\r\n", &Limits::default(), false);
    assert_eq!(big.unwrap_err(), ParseError::BadNumber);
    assert_eq!(
        parse(b"GET \"a\r\n", &l, true).unwrap_err(),
        ParseError::UnbalancedQuotes
    );
}

fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Encoded frames, built from owned parts so the strategy is 'static.
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|d| {
            let mut out = Vec::new();
            encode(&Frame::Bulk(Some(&d)), &mut out);
            out
        }),
        any::<i64>().prop_map(|n| {
            let mut out = Vec::new();
            encode(&Frame::Integer(n), &mut out);
            out
        }),
        "[a-zA-Z0-9 ]{0,20}".prop_map(|s| {
            let mut out = Vec::new();
            encode(&Frame::Simple(s.as_bytes()), &mut out);
            out
        }),
        Just(b"$-1\r\n".to_vec()),
        Just(b"_\r\n".to_vec()),
        Just(b"#f\r\n".to_vec()),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(|items| {
            let mut out = format!("*{}\r\n", items.len()).into_bytes();
            for i in items {
                out.extend_from_slice(&i);
            }
            out
        })
    })
}

proptest! {
    #[test]
    fn encode_parse_round_trip(wire in frame_strategy()) {
        let (frame, used) = whole(&wire);
        prop_assert_eq!(used, wire.len());
        let mut again = Vec::new();
        encode(&frame, &mut again);
        prop_assert_eq!(again, wire);
    }

    #[test]
    fn split_at_every_boundary_parses_the_same(wire in frame_strategy()) {
        let full = whole(&wire);
        for cut in 0..wire.len() {
            prop_assert_eq!(parse(&wire[..cut], &Limits::default(), true).unwrap(), Parsed::NeedMore);
        }
        let mut padded = wire.clone();
        padded.extend_from_slice(b"*1\r\n");
        prop_assert_eq!(whole(&padded), full);
    }

    #[test]
    fn scanner_resumes_over_any_chunking(
        wire in frame_strategy(),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut scanner = Scanner::new(Limits::default(), true);
        let mut found = None;
        for &cut in &cuts {
            if let Some(end) = scanner.scan(&wire[..cut]).unwrap() {
                found = Some((end, cut));
                break;
            }
        }
        let (end, at) = found.expect("the whole frame was fed");
        prop_assert_eq!(end, wire.len());
        prop_assert_eq!(at, wire.len());
        prop_assert_eq!(whole(&wire[..end]), whole(&wire));
    }

    #[test]
    fn scanner_agrees_with_parse(bytes in proptest::collection::vec(any::<u8>(), 0..200), split in any::<proptest::sample::Index>()) {
        let limits = Limits { max_bulk: 64, max_elements: 8, max_depth: 3, max_line: 32 };
        let cut = split.index(bytes.len() + 1);
        let mut scanner = Scanner::new(limits, false);
        let early = scanner.scan(&bytes[..cut]);
        let scanned = match early {
            Ok(None) => scanner.scan(&bytes),
            other => other,
        };
        let parsed = parse(&bytes, &limits, false);
        match (scanned, parsed) {
            (Ok(None), Ok(Parsed::NeedMore)) => {}
            (Ok(Some(end)), Ok(Parsed::Frame(_, used))) => prop_assert_eq!(end, used),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) if cut < bytes.len() => {
                // A frame (or error) may complete inside the prefix.
                let on_prefix = parse(&bytes[..cut], &limits, false);
                prop_assert!(matches!((&a, &on_prefix), (Ok(Some(_)), Ok(Parsed::Frame(..))) | (Err(_), Err(_))), "{:?} vs {:?} / {:?}", a, b, on_prefix);
            }
            (a, b) => prop_assert!(false, "scanner {:?}, parse {:?}", a, b),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), inline: bool) {
        let _ = parse(&bytes, &Limits::default(), inline);
        let small = Limits { max_bulk: 8, max_elements: 3, max_depth: 2, max_line: 8 };
        let _ = parse(&bytes, &small, inline);
        let mut scanner = Scanner::new(small, inline);
        for cut in 0..=bytes.len() {
            if !matches!(scanner.scan(&bytes[..cut]), Ok(None)) {
                break;
            }
        }
    }
}
