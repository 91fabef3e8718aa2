//! The RESP encoder.

use super::Frame;

/// Appends the wire form of `frame` to `out` (inline commands become
/// arrays of bulk strings).
pub fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) {
    fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
        out.push(kind);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    fn bulk(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        line(out, kind, data.len().to_string().as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    fn aggregate(out: &mut Vec<u8>, kind: u8, count: usize, items: &[Frame<'_>]) {
        line(out, kind, count.to_string().as_bytes());
        for item in items {
            encode(item, out);
        }
    }
    match frame {
        Frame::Simple(t) => line(out, b'+', t),
        Frame::Error(t) => line(out, b'-', t),
        Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
        Frame::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Frame::Bulk(Some(d)) => bulk(out, b'$', d),
        Frame::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Frame::Array(Some(items)) => aggregate(out, b'*', items.len(), items),
        Frame::Null => out.extend_from_slice(b"_\r\n"),
        Frame::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
        Frame::Double(t) => line(out, b',', t),
        Frame::BigNumber(t) => line(out, b'(', t),
        Frame::BulkError(d) => bulk(out, b'!', d),
        Frame::Verbatim(d) => bulk(out, b'=', d),
        Frame::Map(items) => aggregate(out, b'%', items.len() / 2, items),
        Frame::Set(items) => aggregate(out, b'~', items.len(), items),
        Frame::Push(items) => aggregate(out, b'>', items.len(), items),
        Frame::Attribute(items) => aggregate(out, b'|', items.len() / 2, items),
        Frame::Inline(words) => {
            line(out, b'*', words.len().to_string().as_bytes());
            for w in words {
                bulk(out, b'$', w);
            }
        }
    }
}
