//! A raw RESP connection whose replies come back in a short readable
//! form (`+OK`, `$v`, `$nil`, `[a, b]`), for tests that compare replies
//! as text.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use super::client::command;
use super::lab::HANG;

/// One connection to the proxy or a backend.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `host`:`port` (in the caller's namespace); every read
    /// waits at most [`HANG`].
    pub fn new(host: &str, port: u16) -> Conn {
        let s = TcpStream::connect((host, port))
            .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
        Conn::over(s)
    }

    /// Connects to 127.0.0.1:`port`.
    pub fn local(port: u16) -> Conn {
        Conn::new("127.0.0.1", port)
    }

    /// A connection over a stream already open.
    pub fn over(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(HANG)).unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// One reply, in a readable form: `+x`, `-x`, `:n`, `$x` / `$nil`,
    /// arrays as `[a, b]`.
    pub fn reply(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("a reply (the proxy hung?)");
        assert!(line.ends_with(b"\r\n"), "reply line {line:?}");
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).to_string();
        match line[0] {
            b'$' if text == "-1" => "$nil".into(),
            b'$' => {
                let mut data = vec![0; text.parse::<usize>().unwrap() + 2];
                self.reader.read_exact(&mut data).unwrap();
                format!("${}", String::from_utf8_lossy(&data[..data.len() - 2]))
            }
            b'*' => {
                let items: Vec<String> = (0..text.parse::<usize>().unwrap())
                    .map(|_| self.reply())
                    .collect();
                format!("[{}]", items.join(", "))
            }
            kind => format!("{}{text}", kind as char),
        }
    }

    /// Sends a command of text arguments and returns its reply.
    pub fn call(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&command(&args));
        self.reply()
    }

    /// Whether the peer closed the connection (EOF on the next read).
    pub fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}
