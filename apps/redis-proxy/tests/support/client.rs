//! A blocking RESP client for tests: sends commands as arrays of bulk
//! strings and returns each reply's wire bytes, framed by our parser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tpa_redis_proxy::resp::{parse, Frame, Limits, Parsed};

/// One connection to a redis server (or anything speaking RESP).
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The server's port.
    pub port: u16,
}

/// The wire form of a command.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A reply's bytes as text, for messages.
pub fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// The frame of a whole reply.
pub fn frame(reply: &[u8]) -> Frame<'_> {
    match parse(reply, &Limits::default(), false) {
        Ok(Parsed::Frame(f, _)) => f,
        other => panic!("not one reply: {other:?} in {}", text(reply)),
    }
}

impl Client {
    /// Connects to 127.0.0.1:`port`; every read waits at most 20 s.
    pub fn connect(port: u16) -> Client {
        Client::connect_at("127.0.0.1", port)
    }

    /// Connects to `host`:`port` (in the caller's namespace); every read
    /// waits at most 20 s.
    pub fn connect_at(host: &str, port: u16) -> Client {
        let stream = TcpStream::connect((host, port))
            .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
            port,
        }
    }

    /// Sends bytes as they are (a command already encoded).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a command without waiting for its reply.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.stream.write_all(&command(args)).unwrap();
    }

    /// The next reply's wire bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            match parse(&self.buf, &Limits::default(), false) {
                Ok(Parsed::Frame(_, used)) => return self.buf.drain(..used).collect(),
                Ok(Parsed::NeedMore) => {}
                Err(e) => panic!("port {}: bad reply {e}: {}", self.port, text(&self.buf)),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("port {}: read: {e}", self.port));
            assert!(n > 0, "port {}: connection closed", self.port);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command and returns its reply's bytes.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// `call` with text arguments.
    pub fn call_str(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&args)
    }

    /// `call_str` that expects `+OK`.
    pub fn ok(&mut self, args: &[&str]) {
        let reply = self.call_str(args);
        assert_eq!(text(&reply), "+OK\r\n", "{args:?} on port {}", self.port);
    }

    /// `call_str` that expects a bulk string, returned as text.
    pub fn bulk(&mut self, args: &[&str]) -> String {
        let reply = self.call_str(args);
        match frame(&reply) {
            Frame::Bulk(Some(b)) | Frame::Verbatim(b) => text(b),
            _ => panic!("{args:?} on port {}: {}", self.port, text(&reply)),
        }
    }
}
