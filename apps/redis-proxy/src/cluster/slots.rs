//! The slot map: which shard (a master and its replicas) serves each of
//! the 16384 slots, built from a CLUSTER SLOTS reply.
//!
//! CLUSTER SLOTS answers an array of ranges; each range is
//! `[start, end, master, replica...]` and each node `[endpoint, port,
//! id, metadata...]` (redis 7 adds the metadata; older versions may omit
//! the id). An endpoint that is empty, null or `?` means the node does not
//! know its address: the host of the node that answered, as redis's
//! documentation says a client should read it.

use super::addr::NodeAddr;
use crate::hash::CLUSTER_SLOTS;
use crate::resp::Frame;
use std::collections::HashMap;
use std::fmt;

/// One node as the map knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Where clients reach it.
    pub addr: NodeAddr,
    /// Its 40-character node id, if the reply had one.
    pub id: Option<String>,
}

/// A master and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The node that serves the shard's slots.
    pub master: ClusterNode,
    /// Its replicas, in the reply's order.
    pub replicas: Vec<ClusterNode>,
}

/// Slot → shard for all 16384 slots; a slot no range names has none.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotMap {
    /// Per slot, an index into `shards`, or `UNASSIGNED`.
    slots: Box<[u16]>,
    shards: Vec<Shard>,
}

const UNASSIGNED: u16 = u16::MAX;

impl fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotMap")
            .field("shards", &self.shards)
            .field("assigned", &self.assigned())
            .finish()
    }
}

/// A CLUSTER SLOTS reply the map cannot be built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotsError {
    /// The node answered an error (cluster support disabled, ...).
    ErrorReply(String),
    /// The reply is not an array of ranges.
    NotAnArray,
    /// Range `range` is not an array of start, end and at least a master.
    BadRange {
        /// The range's index in the reply.
        range: usize,
    },
    /// Range `range` has a slot outside 0..16384 or start after end.
    BadSlots {
        /// The range's index in the reply.
        range: usize,
    },
    /// Range `range`'s node `node` (0: the master) is malformed.
    BadNode {
        /// The range's index in the reply.
        range: usize,
        /// The node's index in the range (0 for the master).
        node: usize,
        /// What is wrong with it.
        what: &'static str,
    },
    /// Two ranges both claim `slot`.
    Overlap {
        /// The first slot claimed twice.
        slot: u16,
    },
    /// No range at all: the node is not (yet) part of a cluster with
    /// assigned slots.
    NoSlots,
    /// More shards than the map can index.
    TooManyShards,
    /// CLUSTER SHARDS: shard `shard` has slots but no node whose role is
    /// master.
    NoMaster {
        /// The shard's index in the reply.
        shard: usize,
    },
}

impl fmt::Display for SlotsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotsError::ErrorReply(e) => write!(f, "CLUSTER SLOTS answered an error: {e}"),
            SlotsError::NotAnArray => f.write_str("CLUSTER SLOTS reply is not an array"),
            SlotsError::BadRange { range } => {
                write!(
                    f,
                    "CLUSTER SLOTS range {range} is not [start, end, master, ...]"
                )
            }
            SlotsError::BadSlots { range } => {
                write!(f, "CLUSTER SLOTS range {range} has slots outside 0-16383")
            }
            SlotsError::BadNode { range, node, what } => {
                write!(f, "CLUSTER SLOTS range {range}, node {node}: {what}")
            }
            SlotsError::Overlap { slot } => {
                write!(f, "CLUSTER SLOTS names slot {slot} in two ranges")
            }
            SlotsError::NoSlots => f.write_str("CLUSTER SLOTS reply assigns no slot"),
            SlotsError::TooManyShards => f.write_str("CLUSTER SLOTS reply has too many shards"),
            SlotsError::NoMaster { shard } => {
                write!(f, "CLUSTER SHARDS shard {shard} has slots but no master")
            }
        }
    }
}

impl std::error::Error for SlotsError {}

impl SlotMap {
    /// A map with no slot assigned.
    pub fn empty() -> SlotMap {
        SlotMap {
            slots: vec![UNASSIGNED; usize::from(CLUSTER_SLOTS)].into_boxed_slice(),
            shards: Vec::new(),
        }
    }

    /// Builds the map from a CLUSTER SLOTS reply sent by the node at `via`.
    pub fn from_cluster_slots(reply: &Frame<'_>, via: &NodeAddr) -> Result<SlotMap, SlotsError> {
        let ranges = match reply {
            Frame::Array(Some(ranges)) => ranges,
            Frame::Error(e) | Frame::BulkError(e) => {
                return Err(SlotsError::ErrorReply(
                    String::from_utf8_lossy(e).into_owned(),
                ))
            }
            _ => return Err(SlotsError::NotAnArray),
        };
        if ranges.is_empty() {
            return Err(SlotsError::NoSlots);
        }
        let mut map = SlotMap::empty();
        let mut shard_of: HashMap<NodeAddr, u16> = HashMap::new();
        for (index, range) in ranges.iter().enumerate() {
            let Frame::Array(Some(items)) = range else {
                return Err(SlotsError::BadRange { range: index });
            };
            let [Frame::Integer(start), Frame::Integer(end), nodes @ ..] = items.as_slice() else {
                return Err(SlotsError::BadRange { range: index });
            };
            if nodes.is_empty() {
                return Err(SlotsError::BadRange { range: index });
            }
            let slots = i64::from(CLUSTER_SLOTS);
            if !(0..slots).contains(start) || !(0..slots).contains(end) || start > end {
                return Err(SlotsError::BadSlots { range: index });
            }
            let mut parsed = nodes
                .iter()
                .enumerate()
                .map(|(n, node)| {
                    parse_node(node, via).map_err(|what| SlotsError::BadNode {
                        range: index,
                        node: n,
                        what,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let master = parsed.remove(0);
            let shard = map.shard_for(&mut shard_of, master, parsed)?;
            // The bounds were checked against 16384 above.
            for slot in *start as usize..=*end as usize {
                if map.slots[slot] != UNASSIGNED {
                    return Err(SlotsError::Overlap { slot: slot as u16 });
                }
                map.slots[slot] = shard;
            }
        }
        Ok(map)
    }

    /// Builds the map from a CLUSTER SHARDS reply (redis 7) sent by the
    /// node at `via`: each shard a map (RESP3) or flat key/value array
    /// (RESP2) of `slots` (start/end pairs) and `nodes` (each with `ip`,
    /// `endpoint`, `port`, `id`, `role`, `health`). The node whose role is
    /// master serves the slots; replicas are kept when their health is
    /// `online`. Shards without slots are skipped. Errors use the shard's
    /// index as `range`.
    pub fn from_cluster_shards(reply: &Frame<'_>, via: &NodeAddr) -> Result<SlotMap, SlotsError> {
        let shards = match reply {
            Frame::Array(Some(shards)) => shards,
            Frame::Error(e) | Frame::BulkError(e) => {
                return Err(SlotsError::ErrorReply(
                    String::from_utf8_lossy(e).into_owned(),
                ))
            }
            _ => return Err(SlotsError::NotAnArray),
        };
        let mut map = SlotMap::empty();
        let mut shard_of: HashMap<NodeAddr, u16> = HashMap::new();
        for (index, shard) in shards.iter().enumerate() {
            let bad_range = SlotsError::BadRange { range: index };
            let fields = pairs(shard).ok_or(bad_range.clone())?;
            let slots = field(&fields, b"slots").ok_or(bad_range.clone())?;
            let nodes = field(&fields, b"nodes").ok_or(bad_range.clone())?;
            let (Frame::Array(Some(slots)), Frame::Array(Some(nodes))) = (slots, nodes) else {
                return Err(bad_range);
            };
            if slots.is_empty() {
                continue;
            }
            let mut ranges = Vec::with_capacity(slots.len() / 2);
            for pair in slots.chunks(2) {
                let bad = SlotsError::BadSlots { range: index };
                let [Frame::Integer(start), Frame::Integer(end)] = pair else {
                    return Err(bad);
                };
                let limit = i64::from(CLUSTER_SLOTS);
                if !(0..limit).contains(start) || !(0..limit).contains(end) || start > end {
                    return Err(bad);
                }
                ranges.push((*start as usize, *end as usize));
            }
            let mut master = None;
            let mut replicas = Vec::new();
            for (n, node) in nodes.iter().enumerate() {
                let bad = |what| SlotsError::BadNode {
                    range: index,
                    node: n,
                    what,
                };
                let (parsed, role, health) = parse_shard_node(node, via).map_err(bad)?;
                match role {
                    Role::Master if master.is_none() => master = Some(parsed),
                    Role::Master => return Err(bad("a second master")),
                    Role::Replica if health == b"online" => replicas.push(parsed),
                    Role::Replica => {}
                }
            }
            let master = master.ok_or(SlotsError::NoMaster { shard: index })?;
            let shard = map.shard_for(&mut shard_of, master, replicas)?;
            for (start, end) in ranges {
                for slot in start..=end {
                    if map.slots[slot] != UNASSIGNED {
                        return Err(SlotsError::Overlap { slot: slot as u16 });
                    }
                    map.slots[slot] = shard;
                }
            }
        }
        if map.shards.is_empty() {
            return Err(SlotsError::NoSlots);
        }
        Ok(map)
    }

    /// The index of the shard whose master is `master` (`shard_of` maps
    /// masters to shards), added if new; replicas not known yet are added.
    fn shard_for(
        &mut self,
        shard_of: &mut HashMap<NodeAddr, u16>,
        master: ClusterNode,
        replicas: Vec<ClusterNode>,
    ) -> Result<u16, SlotsError> {
        if let Some(&i) = shard_of.get(&master.addr) {
            let shard = &mut self.shards[usize::from(i)];
            if shard.replicas != replicas {
                for r in replicas {
                    if !shard.replicas.contains(&r) {
                        shard.replicas.push(r);
                    }
                }
            }
            return Ok(i);
        }
        let index = u16::try_from(self.shards.len())
            .ok()
            .filter(|&i| i != UNASSIGNED)
            .ok_or(SlotsError::TooManyShards)?;
        shard_of.insert(master.addr.clone(), index);
        self.shards.push(Shard { master, replicas });
        Ok(index)
    }

    /// The shard serving `slot`, if any (`slot` ≥ 16384 has none).
    pub fn shard(&self, slot: u16) -> Option<&Shard> {
        let index = *self.slots.get(usize::from(slot))?;
        self.shards.get(usize::from(index))
    }

    /// The index in `shards()` of the shard serving `slot`, if any.
    pub fn shard_index(&self, slot: u16) -> Option<usize> {
        match self.slots.get(usize::from(slot)) {
            Some(&i) if i != UNASSIGNED => Some(usize::from(i)),
            _ => None,
        }
    }

    /// The master serving `slot`, if any.
    pub fn master(&self, slot: u16) -> Option<&NodeAddr> {
        self.shard(slot).map(|s| &s.master.addr)
    }

    /// Every shard, in the reply's order of first appearance.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// How many slots have an owner.
    pub fn assigned(&self) -> usize {
        self.slots.iter().filter(|&&s| s != UNASSIGNED).count()
    }

    /// The contiguous slot ranges of the shard at `index` in `shards()`.
    pub fn ranges_of(&self, index: usize) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (slot, &owner) in self.slots.iter().enumerate() {
            if usize::from(owner) != index || owner == UNASSIGNED {
                continue;
            }
            let slot = slot as u16;
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
    }
}

fn parse_node(node: &Frame<'_>, via: &NodeAddr) -> Result<ClusterNode, &'static str> {
    let Frame::Array(Some(fields)) = node else {
        return Err("not an array");
    };
    let (endpoint, port, id) = match fields.as_slice() {
        [endpoint, port] => (endpoint, port, None),
        [endpoint, port, id, ..] => (endpoint, port, Some(id)),
        _ => return Err("fewer than endpoint and port"),
    };
    let host = match endpoint {
        Frame::Bulk(Some(h)) | Frame::Simple(h) if !h.is_empty() && *h != b"?" => {
            let h = std::str::from_utf8(h).map_err(|_| "endpoint is not text")?;
            if h.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err("endpoint has spaces or control bytes");
            }
            h.to_string()
        }
        // Empty, `?` or null: unknown, the host of the node that answered.
        Frame::Bulk(_) | Frame::Simple(_) | Frame::Null => via.host.clone(),
        _ => return Err("endpoint is not a string"),
    };
    let port = match port {
        Frame::Integer(p) => u16::try_from(*p)
            .ok()
            .filter(|&p| p != 0)
            .ok_or("port is not from 1 to 65535")?,
        _ => return Err("port is not an integer"),
    };
    let id = match id {
        None => None,
        Some(Frame::Bulk(Some(id)) | Frame::Simple(id)) => Some(
            std::str::from_utf8(id)
                .map_err(|_| "node id is not text")?
                .to_string(),
        ),
        Some(_) => return Err("node id is not a string"),
    };
    Ok(ClusterNode {
        addr: NodeAddr::new(host, port),
        id,
    })
}

/// A CLUSTER SHARDS node's role.
enum Role {
    Master,
    Replica,
}

/// The key/value pairs of a RESP3 map or a RESP2 flat array.
fn pairs<'f, 'a>(frame: &'f Frame<'a>) -> Option<Vec<(&'f [u8], &'f Frame<'a>)>> {
    let items = match frame {
        Frame::Map(items) => items,
        Frame::Array(Some(items)) if items.len() % 2 == 0 => items,
        _ => return None,
    };
    items
        .chunks(2)
        .map(|kv| match &kv[0] {
            Frame::Bulk(Some(k)) | Frame::Simple(k) => Some((*k, &kv[1])),
            _ => None,
        })
        .collect()
}

fn field<'f, 'a>(fields: &[(&[u8], &'f Frame<'a>)], name: &[u8]) -> Option<&'f Frame<'a>> {
    fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn text_field<'f>(fields: &[(&[u8], &'f Frame<'_>)], name: &[u8]) -> Option<&'f [u8]> {
    match field(fields, name)? {
        Frame::Bulk(Some(t)) | Frame::Simple(t) | Frame::Verbatim(t) => Some(t),
        _ => None,
    }
}

fn parse_shard_node<'f>(
    node: &'f Frame<'_>,
    via: &NodeAddr,
) -> Result<(ClusterNode, Role, &'f [u8]), &'static str> {
    let fields = pairs(node).ok_or("not a map of fields")?;
    // The preferred endpoint, else the IP; empty or `?`: unknown.
    let host = [b"endpoint".as_slice(), b"ip"]
        .iter()
        .filter_map(|k| text_field(&fields, k))
        .find(|h| !h.is_empty() && *h != b"?");
    let host = match host {
        Some(h) => {
            let h = std::str::from_utf8(h).map_err(|_| "endpoint is not text")?;
            if h.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err("endpoint has spaces or control bytes");
            }
            h.to_string()
        }
        None => via.host.clone(),
    };
    let port = match field(&fields, b"port").or_else(|| field(&fields, b"tls-port")) {
        Some(Frame::Integer(p)) => u16::try_from(*p)
            .ok()
            .filter(|&p| p != 0)
            .ok_or("port is not from 1 to 65535")?,
        _ => return Err("no integer port"),
    };
    let id = match text_field(&fields, b"id") {
        Some(id) => Some(
            std::str::from_utf8(id)
                .map_err(|_| "node id is not text")?
                .to_string(),
        ),
        None => None,
    };
    let role = match text_field(&fields, b"role") {
        Some(b"master") => Role::Master,
        Some(b"replica") | Some(b"slave") => Role::Replica,
        _ => return Err("role is not master or replica"),
    };
    let health = text_field(&fields, b"health").unwrap_or(b"online");
    Ok((
        ClusterNode {
            addr: NodeAddr::new(host, port),
            id,
        },
        role,
        health,
    ))
}
