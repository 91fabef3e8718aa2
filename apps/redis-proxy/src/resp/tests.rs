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
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), inline: bool) {
        let _ = parse(&bytes, &Limits::default(), inline);
        let small = Limits { max_bulk: 8, max_elements: 3, max_depth: 2, max_line: 8 };
        let _ = parse(&bytes, &small, inline);
    }
}
