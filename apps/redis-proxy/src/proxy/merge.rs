//! Merging the replies of a split request (MGET, MSET, DEL, UNLINK,
//! EXISTS, TOUCH) into the one reply its client expects, in key order.

use super::request::{error_reply, MergeKind};
use super::session::{Merging, Pending};
use crate::resp::{self, Frame, Parsed};

/// Folds fragment `fragment`'s reply (`bytes`, one whole frame) into the
/// merge (each fragment is answered once: its key list is taken, not
/// copied).
pub fn merge_fragment(m: &mut Merging, fragment: u32, bytes: &[u8]) {
    let keys = m
        .fragment_keys
        .get_mut(fragment as usize)
        .map(std::mem::take)
        .unwrap_or_default();
    let frame = match resp::parse(bytes, &resp::Limits::default(), false) {
        Ok(Parsed::Frame(f, _)) => Some(f),
        _ => None,
    };
    let unexpected = || error_reply("ERR unexpected reply from the server to a split command");
    let as_error = |f: &Option<Frame<'_>>| match f {
        Some(Frame::Error(_)) => bytes.to_vec(),
        _ => unexpected(),
    };
    match m.kind {
        MergeKind::Values => match &frame {
            Some(Frame::Array(Some(items))) if items.len() == keys.len() => {
                for (&k, item) in keys.iter().zip(items) {
                    let slot = &mut m.values[k as usize];
                    slot.clear();
                    resp::encode(item, slot);
                }
            }
            _ => {
                let e = as_error(&frame);
                for &k in &keys {
                    m.values[k as usize] = e.clone();
                }
            }
        },
        MergeKind::Sum => match &frame {
            Some(Frame::Integer(n)) => m.sum += n,
            _ => {
                let e = as_error(&frame);
                m.error.get_or_insert(e);
            }
        },
        // Kept whole (errors too): `info_reply` reads them at the end.
        MergeKind::Info => {
            if let Some(&k) = keys.first() {
                m.values[k as usize] = bytes.to_vec();
            }
        }
        MergeKind::AllOk => match &frame {
            Some(Frame::Simple(b"OK")) => {}
            _ => {
                let e = as_error(&frame);
                m.error.get_or_insert(e);
            }
        },
    }
}

/// Writes the merged reply once every fragment answered.
pub fn finish_merge(pending: &mut Pending) {
    let Some(m) = pending.merge.take() else {
        return;
    };
    let out = &mut pending.reply;
    match (m.kind, m.error) {
        (MergeKind::Values, _) => {
            out.push_bytes(format!("*{}\r\n", m.values.len()).as_bytes());
            for v in m.values {
                out.push_chunk(v);
            }
        }
        (MergeKind::Info, _) => {
            let (head, keyspace) = m.info.unwrap_or_default();
            let replies: Vec<&[u8]> = m.values.iter().map(Vec::as_slice).collect();
            out.push_bytes(&crate::cluster::info_reply(&head, keyspace, &replies));
        }
        (_, Some(e)) => out.push_bytes(&e),
        (MergeKind::Sum, None) => out.push_bytes(format!(":{}\r\n", m.sum).as_bytes()),
        (MergeKind::AllOk, None) => out.push_bytes(b"+OK\r\n"),
    }
}
