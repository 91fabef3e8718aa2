//! TCP header and options over arbitrary bytes: views and the option parser
//! never panic and terminate; every option that parses is written back by
//! the writer and parses again to the same value.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use tpa::wire::tcp::{TcpOption, TcpOptionWriter, TcpOptions, TcpView};

fuzz_target!(|data: &[u8]| {
    // The option parser on raw bytes.
    let mut count = 0;
    for opt in TcpOptions::new(data) {
        count += 1;
        assert!(count <= data.len());
        let Ok(opt) = opt else { break };
        let mut buf = [0u8; 40];
        let mut w = TcpOptionWriter::new(&mut buf);
        if w.option(&opt).is_ok() {
            let n = w.finish();
            let again: Vec<_> = TcpOptions::new(&buf[..n])
                .filter(|o| *o != Ok(TcpOption::Nop) || opt == TcpOption::Nop)
                .collect();
            assert_eq!(again.first(), Some(&Ok(opt)));
        }
    }
    let _ = TcpOptions::new(data).summary();

    // The header view.
    let Ok(tcp) = TcpView::new(data) else {
        return;
    };
    assert!(tcp.header_len() >= 20 && tcp.header_len() <= data.len());
    let _ = (tcp.flags(), tcp.to_header(), tcp.options_iter().count());
    let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let mut copy = data.to_vec();
    let mut w = TcpView::new(&mut copy[..]).expect("same bytes");
    w.fill_checksum_v4(s, d);
    assert!(w.checksum_ok_v4(s, d));
});
