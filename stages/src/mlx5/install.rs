//! Installing [`FlowRule`]s on a DPDK port with `rte_flow`, and removing them
//! on drop.
//!
//! Every rule is first built in C form and then copied by DPDK's own
//! `rte_flow_conv` (`RTE_FLOW_CONV_OP_RULE`); the copy is what the driver
//! is given. The conversion proves only that each item and action is a
//! type DPDK knows and that its spec, mask and conf are the size DPDK's
//! descriptor tables say (it copies that many bytes, and follows the RSS
//! queue list). It does not prove that a driver accepts the rule: only
//! `rte_flow_validate` on that driver can, and no driver available to the
//! tests does (see doc/guide/dpdk.md, "What ran here").

use std::ffi::{c_void, CStr};
use std::ptr::{self, NonNull};

use tpa::port::dpdk::{sys, DpdkDevice};

use super::fallback::OffloadPlan;
use super::rules::{Bifurcation, BifurcationError, FlowAction, FlowItem, FlowRule};

/// Rules live on a port; destroyed when dropped.
#[derive(Debug)]
pub struct InstalledRules {
    device: DpdkDevice,
    flows: Vec<NonNull<sys::rte_flow>>,
}

// SAFETY: the flow handles are only passed back to rte_flow_destroy, which
// may be called from any thread.
unsafe impl Send for InstalledRules {}

impl InstalledRules {
    /// Number of rules installed.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

impl Drop for InstalledRules {
    fn drop(&mut self) {
        for flow in self.flows.drain(..).rev() {
            let mut err = sys::rte_flow_error::default();
            // SAFETY: `flow` was created on this port and is destroyed once.
            let rc =
                unsafe { sys::rte_flow_destroy(self.device.port_id(), flow.as_ptr(), &mut err) };
            if rc != 0 {
                tracing::warn!(port = self.device.name(), error = %describe(rc, &err), "rte_flow_destroy failed");
            }
        }
    }
}

/// A rule the driver refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRefused {
    /// Its index in the list given.
    pub index: usize,
    /// The driver's explanation.
    pub message: String,
}

impl core::fmt::Display for RuleRefused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "rule {}: {}", self.index, self.message)
    }
}

impl std::error::Error for RuleRefused {}

/// Validates every rule with `rte_flow_validate`, then creates them all —
/// or none: on the first refusal nothing stays installed.
///
/// Each rule is given to the driver as DPDK's `rte_flow_conv` copied it
/// ([`convert`]); a rule DPDK cannot convert is refused before any driver
/// sees it.
pub fn install(device: &DpdkDevice, rules: &[FlowRule]) -> Result<InstalledRules, RuleRefused> {
    let port = device.port_id();
    let lowered = convert(rules)?;
    for (index, rule) in lowered.iter().enumerate() {
        let mut err = sys::rte_flow_error::default();
        let (attr, items, actions) = rule.raw();
        // SAFETY: the converted rule's arrays are END-terminated and point
        // into its buffer, alive for the call.
        let rc = unsafe { sys::rte_flow_validate(port, attr, items, actions, &mut err) };
        if rc != 0 {
            return Err(RuleRefused {
                index,
                message: describe(rc, &err),
            });
        }
    }
    let mut installed = InstalledRules {
        device: device.clone(),
        flows: Vec::with_capacity(rules.len()),
    };
    for (index, rule) in lowered.iter().enumerate() {
        let mut err = sys::rte_flow_error::default();
        let (attr, items, actions) = rule.raw();
        // SAFETY: as for validation; DPDK copies what it keeps.
        let flow = unsafe { sys::rte_flow_create(port, attr, items, actions, &mut err) };
        match NonNull::new(flow) {
            Some(flow) => installed.flows.push(flow),
            // `installed` drops, destroying the rules created so far.
            None => {
                return Err(RuleRefused {
                    index,
                    message: describe(-tpa::port::dpdk::rte_errno(), &err),
                })
            }
        }
    }
    Ok(installed)
}

/// Installs the rules of `plan` on `device` where the driver takes them and
/// decides (and logs, once) what falls back to software. The rules, if any,
/// stay installed as long as the returned value lives.
pub fn bifurcate(
    device: &DpdkDevice,
    plan: &Bifurcation,
) -> Result<(OffloadPlan, Option<InstalledRules>), BifurcationError> {
    let rules = plan.rules()?;
    let (outcome, installed) = match install(device, &rules) {
        Ok(installed) => (Ok(installed.len()), Some(installed)),
        Err(refused) => (Err(refused.to_string()), None),
    };
    let offloads = OffloadPlan::decide(device.caps(), device.flow_isolated(), outcome);
    offloads.warn_once(device.name());
    Ok((offloads, installed))
}

/// Builds each rule in C form and has DPDK's `rte_flow_conv` copy it
/// (`RTE_FLOW_CONV_OP_RULE`), as [`install`] does before handing the rules
/// to the driver. Needs no EAL and no device.
///
/// A success proves that DPDK knows every item and action type used and
/// copied each spec, mask and conf at the size its tables give for that
/// type; it says nothing of whether a driver accepts the rule.
pub fn convert(rules: &[FlowRule]) -> Result<Vec<ConvertedRule>, RuleRefused> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            ConvertedRule::from_c(&CRule::new(rule))
                .map_err(|message| RuleRefused { index, message })
        })
        .collect()
}

/// A rule as DPDK's `rte_flow_conv` copied it: one buffer holding a
/// `rte_flow_conv_rule` and everything it points to. Read it with
/// [`attr`](Self::attr), [`items`](Self::items) and
/// [`actions`](Self::actions).
pub struct ConvertedRule {
    /// 8-byte aligned, as the pointers DPDK writes into it need.
    buf: Vec<u64>,
}

impl core::fmt::Debug for ConvertedRule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConvertedRule")
            .field("attr", &self.attr())
            .field("items", &self.items())
            .field("actions", &self.actions())
            .finish()
    }
}

/// A converted rule's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleAttr {
    /// Flow table group.
    pub group: u32,
    /// Priority within the group.
    pub priority: u32,
    /// Applies to received traffic.
    pub ingress: bool,
    /// Applies to sent traffic.
    pub egress: bool,
    /// Applies in the embedded switch.
    pub transfer: bool,
}

/// One pattern item of a converted rule, as DPDK copied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedItem {
    /// The item type (`RTE_FLOW_ITEM_TYPE_*`).
    pub kind: sys::rte_flow_item_type,
    /// DPDK's name for the type (`RTE_FLOW_CONV_OP_ITEM_NAME`).
    pub name: String,
    /// The spec's bytes (`None`: no spec), for the types tpa uses.
    pub spec: Option<Vec<u8>>,
    /// The range end's bytes (`None`: no range).
    pub last: Option<Vec<u8>>,
    /// The mask's bytes (`None`: the type's default mask).
    pub mask: Option<Vec<u8>>,
}

/// One action of a converted rule, as DPDK copied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertedAction {
    /// `RTE_FLOW_ACTION_TYPE_MARK`.
    Mark {
        /// The mark id.
        id: u32,
    },
    /// `RTE_FLOW_ACTION_TYPE_QUEUE`.
    Queue {
        /// The receive queue.
        index: u16,
    },
    /// `RTE_FLOW_ACTION_TYPE_RSS`, its queue list copied too.
    Rss {
        /// Hash function (`RTE_ETH_HASH_FUNCTION_*`).
        func: sys::rte_eth_hash_function,
        /// Encapsulation level.
        level: u32,
        /// Hash types (`RTE_ETH_RSS_*`).
        types: u64,
        /// Key length (0: the device's key).
        key_len: u32,
        /// The queues.
        queues: Vec<u16>,
    },
    /// Another type, by DPDK's name for it.
    Other {
        /// The action type (`RTE_FLOW_ACTION_TYPE_*`).
        kind: sys::rte_flow_action_type,
        /// DPDK's name for the type.
        name: String,
    },
}

impl ConvertedRule {
    /// Has `rte_flow_conv` copy `c`; its error message when DPDK refuses.
    fn from_c(c: &CRule) -> Result<ConvertedRule, String> {
        let src = sys::rte_flow_conv_rule {
            __bindgen_anon_1: sys::rte_flow_conv_rule__bindgen_ty_1 { attr_ro: &c.attr },
            __bindgen_anon_2: sys::rte_flow_conv_rule__bindgen_ty_2 {
                pattern_ro: c.items.as_ptr(),
            },
            __bindgen_anon_3: sys::rte_flow_conv_rule__bindgen_ty_3 {
                actions_ro: c.actions.as_ptr(),
            },
        };
        let conv = |dst: *mut u64, size: usize| {
            let mut err = sys::rte_flow_error::default();
            // SAFETY: `src` points at END-terminated arrays and confs owned
            // by `c`, alive for the call; `dst` has room for `size` bytes
            // (none when it is NULL and `size` 0, the size query).
            let rc = unsafe {
                sys::rte_flow_conv(
                    sys::RTE_FLOW_CONV_OP_RULE,
                    dst.cast(),
                    size,
                    (&src as *const sys::rte_flow_conv_rule).cast(),
                    &mut err,
                )
            };
            usize::try_from(rc).map_err(|_| format!("rte_flow_conv: {}", describe(rc, &err)))
        };
        let needed = conv(ptr::null_mut(), 0)?;
        let mut buf = vec![0u64; needed.div_ceil(8)];
        let written = conv(buf.as_mut_ptr(), buf.len() * 8)?;
        if written != needed {
            return Err(format!(
                "rte_flow_conv: asked for {needed} bytes, wrote {written}"
            ));
        }
        Ok(ConvertedRule { buf })
    }

    /// The `rte_flow_conv_rule` at the start of the buffer.
    fn rule(&self) -> &sys::rte_flow_conv_rule {
        // SAFETY: rte_flow_conv wrote a rte_flow_conv_rule at the start of
        // the buffer, which is 8-byte aligned and at least that long.
        unsafe { &*self.buf.as_ptr().cast::<sys::rte_flow_conv_rule>() }
    }

    /// The attributes, items and actions, as rte_flow calls take them.
    fn raw(
        &self,
    ) -> (
        *const sys::rte_flow_attr,
        *const sys::rte_flow_item,
        *const sys::rte_flow_action,
    ) {
        let rule = self.rule();
        // SAFETY: rte_flow_conv set the read-only view of each union.
        unsafe {
            (
                rule.__bindgen_anon_1.attr_ro,
                rule.__bindgen_anon_2.pattern_ro,
                rule.__bindgen_anon_3.actions_ro,
            )
        }
    }

    /// The attributes.
    pub fn attr(&self) -> RuleAttr {
        // SAFETY: the attributes live in the buffer, copied by DPDK.
        let a = unsafe { &*self.raw().0 };
        RuleAttr {
            group: a.group,
            priority: a.priority,
            ingress: a.ingress() != 0,
            egress: a.egress() != 0,
            transfer: a.transfer() != 0,
        }
    }

    /// The pattern, outermost first, without its END.
    pub fn items(&self) -> Vec<ConvertedItem> {
        let mut out = Vec::new();
        let mut at = self.raw().1;
        loop {
            // SAFETY: the pattern is END-terminated inside the buffer.
            let item = unsafe { &*at };
            if item.type_ == sys::RTE_FLOW_ITEM_TYPE_END {
                return out;
            }
            let size = item_size(item.type_);
            out.push(ConvertedItem {
                kind: item.type_,
                name: type_name(sys::RTE_FLOW_CONV_OP_ITEM_NAME, item.type_),
                // SAFETY: DPDK copied `size` bytes behind each non-NULL
                // pointer of an item of this type (its table's size).
                spec: unsafe { bytes_at(item.spec, size) },
                // SAFETY: as above.
                last: unsafe { bytes_at(item.last, size) },
                // SAFETY: as above.
                mask: unsafe { bytes_at(item.mask, size) },
            });
            // SAFETY: not END yet, so the next item is in the array.
            at = unsafe { at.add(1) };
        }
    }

    /// The actions, in order, without their END.
    pub fn actions(&self) -> Vec<ConvertedAction> {
        let mut out = Vec::new();
        let mut at = self.raw().2;
        loop {
            // SAFETY: the action list is END-terminated inside the buffer.
            let action = unsafe { &*at };
            // DPDK copied the conf of each action's type: a non-NULL conf
            // points at that struct, an RSS conf's queue array at
            // `queue_num` entries.
            let decoded = match action.type_ {
                sys::RTE_FLOW_ACTION_TYPE_END => return out,
                sys::RTE_FLOW_ACTION_TYPE_MARK if !action.conf.is_null() => {
                    // SAFETY: a MARK conf, copied by DPDK.
                    let mark = unsafe { &*action.conf.cast::<sys::rte_flow_action_mark>() };
                    ConvertedAction::Mark { id: mark.id }
                }
                sys::RTE_FLOW_ACTION_TYPE_QUEUE if !action.conf.is_null() => {
                    // SAFETY: a QUEUE conf, copied by DPDK.
                    let queue = unsafe { &*action.conf.cast::<sys::rte_flow_action_queue>() };
                    ConvertedAction::Queue { index: queue.index }
                }
                sys::RTE_FLOW_ACTION_TYPE_RSS if !action.conf.is_null() => {
                    // SAFETY: an RSS conf, copied by DPDK.
                    let rss = unsafe { &*action.conf.cast::<sys::rte_flow_action_rss>() };
                    let queues = if rss.queue.is_null() {
                        Vec::new()
                    } else {
                        // SAFETY: DPDK copied `queue_num` queue indexes.
                        unsafe { std::slice::from_raw_parts(rss.queue, rss.queue_num as usize) }
                            .to_vec()
                    };
                    ConvertedAction::Rss {
                        func: rss.func,
                        level: rss.level,
                        types: rss.types,
                        key_len: rss.key_len,
                        queues,
                    }
                }
                kind => ConvertedAction::Other {
                    kind,
                    name: type_name(sys::RTE_FLOW_CONV_OP_ACTION_NAME, kind),
                },
            };
            out.push(decoded);
            // SAFETY: not END yet, so the next action is in the array.
            at = unsafe { at.add(1) };
        }
    }
}

/// The size of an item type's spec/last/mask struct, for the types tpa
/// builds (0 for others: their bytes are not read).
fn item_size(kind: sys::rte_flow_item_type) -> usize {
    match kind {
        sys::RTE_FLOW_ITEM_TYPE_ETH => size_of::<sys::rte_flow_item_eth>(),
        sys::RTE_FLOW_ITEM_TYPE_IPV4 => size_of::<sys::rte_flow_item_ipv4>(),
        sys::RTE_FLOW_ITEM_TYPE_IPV6 => size_of::<sys::rte_flow_item_ipv6>(),
        sys::RTE_FLOW_ITEM_TYPE_TCP => size_of::<sys::rte_flow_item_tcp>(),
        sys::RTE_FLOW_ITEM_TYPE_UDP => size_of::<sys::rte_flow_item_udp>(),
        _ => 0,
    }
}

/// The `size` bytes at `p`, or `None` for a NULL pointer.
///
/// # Safety
/// A non-NULL `p` points at `size` readable bytes.
unsafe fn bytes_at(p: *const c_void, size: usize) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
    Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), size) }.to_vec())
}

/// DPDK's name for an item or action type (`op` says which), or the
/// number when DPDK has none.
fn type_name(op: sys::rte_flow_conv_op, kind: u32) -> String {
    let mut name = [0u8; 64];
    let mut err = sys::rte_flow_error::default();
    // SAFETY: `name` has room for 64 bytes; DPDK writes a NUL-terminated,
    // truncated name; `src` is the type value itself, as the op takes it.
    let rc = unsafe {
        sys::rte_flow_conv(
            op,
            name.as_mut_ptr().cast(),
            name.len(),
            kind as usize as *const c_void,
            &mut err,
        )
    };
    if rc < 0 {
        return format!("#{kind}");
    }
    CStr::from_bytes_until_nul(&name)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("#{kind}"))
}

/// A rule in C form, owning everything its arrays point to.
// The boxes are what keeps the pointed-to addresses stable while the Vecs
// holding them grow.
#[allow(clippy::vec_box)]
struct CRule {
    attr: sys::rte_flow_attr,
    items: Vec<sys::rte_flow_item>,
    actions: Vec<sys::rte_flow_action>,
    // Pointed to by `items`/`actions`; boxed so the addresses are stable.
    _ipv4: Vec<Box<[sys::rte_flow_item_ipv4; 2]>>,
    _ipv6: Vec<Box<[sys::rte_flow_item_ipv6; 2]>>,
    _tcp: Vec<Box<[sys::rte_flow_item_tcp; 2]>>,
    _mark: Vec<Box<sys::rte_flow_action_mark>>,
    _queue: Vec<Box<sys::rte_flow_action_queue>>,
    _rss: Vec<(Box<sys::rte_flow_action_rss>, Box<[u16]>)>,
}

impl CRule {
    fn new(rule: &FlowRule) -> CRule {
        let mut attr = sys::rte_flow_attr {
            group: rule.group,
            priority: rule.priority,
            ..Default::default()
        };
        attr.set_ingress(1);
        let mut c = CRule {
            attr,
            items: Vec::new(),
            actions: Vec::new(),
            _ipv4: Vec::new(),
            _ipv6: Vec::new(),
            _tcp: Vec::new(),
            _mark: Vec::new(),
            _queue: Vec::new(),
            _rss: Vec::new(),
        };
        for item in &rule.pattern {
            let (type_, spec, mask): (_, *const c_void, *const c_void) = match item {
                FlowItem::Eth => (sys::RTE_FLOW_ITEM_TYPE_ETH, ptr::null(), ptr::null()),
                FlowItem::Ipv4 { dst } => {
                    let mut pair: Box<[sys::rte_flow_item_ipv4; 2]> = Box::default();
                    if let Some(dst) = dst {
                        // Network byte order: the address's bytes as they are.
                        pair[0].hdr.dst_addr = u32::from_ne_bytes(dst.octets());
                        pair[1].hdr.dst_addr = u32::MAX;
                    }
                    let p = (
                        (&pair[0] as *const sys::rte_flow_item_ipv4).cast(),
                        (&pair[1] as *const sys::rte_flow_item_ipv4).cast(),
                    );
                    c._ipv4.push(pair);
                    (sys::RTE_FLOW_ITEM_TYPE_IPV4, p.0, p.1)
                }
                FlowItem::Ipv6 { dst } => {
                    let mut pair: Box<[sys::rte_flow_item_ipv6; 2]> = Box::default();
                    if let Some(dst) = dst {
                        pair[0].hdr.dst_addr = dst.octets();
                        pair[1].hdr.dst_addr = [0xff; 16];
                    }
                    let p = (
                        (&pair[0] as *const sys::rte_flow_item_ipv6).cast(),
                        (&pair[1] as *const sys::rte_flow_item_ipv6).cast(),
                    );
                    c._ipv6.push(pair);
                    (sys::RTE_FLOW_ITEM_TYPE_IPV6, p.0, p.1)
                }
                FlowItem::Tcp { src, dst } => {
                    let mut pair: Box<[sys::rte_flow_item_tcp; 2]> = Box::default();
                    if let Some(m) = src {
                        pair[0].hdr.src_port = m.value.to_be();
                        pair[1].hdr.src_port = m.mask.to_be();
                    }
                    if let Some(m) = dst {
                        pair[0].hdr.dst_port = m.value.to_be();
                        pair[1].hdr.dst_port = m.mask.to_be();
                    }
                    let p = (
                        (&pair[0] as *const sys::rte_flow_item_tcp).cast(),
                        (&pair[1] as *const sys::rte_flow_item_tcp).cast(),
                    );
                    c._tcp.push(pair);
                    (sys::RTE_FLOW_ITEM_TYPE_TCP, p.0, p.1)
                }
            };
            c.items.push(sys::rte_flow_item {
                type_,
                spec,
                last: ptr::null(),
                mask,
            });
        }
        c.items.push(sys::rte_flow_item {
            type_: sys::RTE_FLOW_ITEM_TYPE_END,
            ..Default::default()
        });
        // An RSS action hashes the flows of the rule's family.
        let rss_types = if rule
            .pattern
            .iter()
            .any(|i| matches!(i, FlowItem::Ipv6 { .. }))
        {
            sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP
        } else {
            sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP
        };
        for action in &rule.actions {
            let (type_, conf): (_, *const c_void) = match action {
                FlowAction::Mark(id) => {
                    let mark = Box::new(sys::rte_flow_action_mark { id: *id });
                    let p = (&*mark as *const sys::rte_flow_action_mark).cast();
                    c._mark.push(mark);
                    (sys::RTE_FLOW_ACTION_TYPE_MARK, p)
                }
                FlowAction::Queue(q) => {
                    let queue = Box::new(sys::rte_flow_action_queue { index: *q });
                    let p = (&*queue as *const sys::rte_flow_action_queue).cast();
                    c._queue.push(queue);
                    (sys::RTE_FLOW_ACTION_TYPE_QUEUE, p)
                }
                FlowAction::Rss(queues) => {
                    let queues: Box<[u16]> = queues.clone().into_boxed_slice();
                    let rss = Box::new(sys::rte_flow_action_rss {
                        func: sys::RTE_ETH_HASH_FUNCTION_DEFAULT,
                        level: 0,
                        types: rss_types,
                        key_len: 0,
                        queue_num: queues.len() as u32,
                        key: ptr::null(),
                        queue: queues.as_ptr(),
                    });
                    let p = (&*rss as *const sys::rte_flow_action_rss).cast();
                    c._rss.push((rss, queues));
                    (sys::RTE_FLOW_ACTION_TYPE_RSS, p)
                }
            };
            c.actions.push(sys::rte_flow_action { type_, conf });
        }
        c.actions.push(sys::rte_flow_action {
            type_: sys::RTE_FLOW_ACTION_TYPE_END,
            conf: ptr::null(),
        });
        c
    }
}

/// The driver's message for a failed rte_flow call, or DPDK's for `rc`.
fn describe(rc: i32, err: &sys::rte_flow_error) -> String {
    let code = rc.abs();
    let driver = if err.message.is_null() {
        None
    } else {
        // SAFETY: a NUL-terminated string owned by the driver, read at once.
        Some(
            unsafe { CStr::from_ptr(err.message) }
                .to_string_lossy()
                .into_owned(),
        )
    };
    let generic = tpa::port::dpdk::strerror(code);
    match driver {
        Some(d) if d != generic => format!("{d} ({generic})"),
        _ => generic,
    }
}

/// The rules pinned as DPDK's `rte_flow_conv` copies them: what a driver
/// would be given, field by field. No EAL or device is needed.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlx5::test_plan::two_workers;
    use crate::mlx5::{FlowMark, MaskedPort};
    use std::net::Ipv4Addr;

    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    /// `rte_ipv4_hdr` and `rte_tcp_hdr` are both 20 bytes.
    const HEADER: usize = 20;

    /// The IPv4 item matching destination `addr` exactly: spec and mask.
    fn ipv4_dst(addr: Ipv4Addr) -> ConvertedItem {
        let (mut spec, mut mask) = (vec![0; HEADER], vec![0; HEADER]);
        spec[16..20].copy_from_slice(&addr.octets()); // dst_addr
        mask[16..20].copy_from_slice(&[0xff; 4]);
        ConvertedItem {
            kind: sys::RTE_FLOW_ITEM_TYPE_IPV4,
            name: "IPV4".into(),
            spec: Some(spec),
            last: None,
            mask: Some(mask),
        }
    }

    /// The TCP item matching destination port `port`, masked.
    fn tcp_dst(port: MaskedPort) -> ConvertedItem {
        let (mut spec, mut mask) = (vec![0; HEADER], vec![0; HEADER]);
        spec[2..4].copy_from_slice(&port.value.to_be_bytes()); // dst_port
        mask[2..4].copy_from_slice(&port.mask.to_be_bytes());
        ConvertedItem {
            kind: sys::RTE_FLOW_ITEM_TYPE_TCP,
            name: "TCP".into(),
            spec: Some(spec),
            last: None,
            mask: Some(mask),
        }
    }

    fn eth_any() -> ConvertedItem {
        ConvertedItem {
            kind: sys::RTE_FLOW_ITEM_TYPE_ETH,
            name: "ETH".into(),
            spec: None,
            last: None,
            mask: None,
        }
    }

    #[test]
    fn item_structs_have_the_sizes_pinned_here() {
        assert_eq!(size_of::<sys::rte_flow_item_ipv4>(), HEADER);
        assert_eq!(size_of::<sys::rte_flow_item_tcp>(), HEADER);
    }

    #[test]
    fn every_rule_converts_to_the_items_and_actions_pinned_here() {
        let rules = two_workers(ADDR, 32768..=65535).rules().unwrap();
        let converted = convert(&rules).unwrap();
        assert_eq!(converted.len(), 4);
        for c in &converted {
            assert_eq!(
                c.attr(),
                RuleAttr {
                    group: 0,
                    priority: 0,
                    ingress: true,
                    egress: false,
                    transfer: false
                }
            );
        }
        let listener = |port: u16| {
            (
                vec![eth_any(), ipv4_dst(ADDR), tcp_dst(MaskedPort::exact(port))],
                vec![
                    ConvertedAction::Mark {
                        id: FlowMark::Listener { port }.id(),
                    },
                    ConvertedAction::Rss {
                        func: sys::RTE_ETH_HASH_FUNCTION_DEFAULT,
                        level: 0,
                        types: sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP,
                        key_len: 0,
                        queues: vec![0, 1],
                    },
                ],
            )
        };
        let worker = |queue: u16, value: u16| {
            (
                vec![
                    eth_any(),
                    ipv4_dst(ADDR),
                    tcp_dst(MaskedPort {
                        value,
                        mask: 0xc000,
                    }),
                ],
                vec![
                    ConvertedAction::Mark {
                        id: FlowMark::Worker { queue }.id(),
                    },
                    ConvertedAction::Queue { index: queue },
                ],
            )
        };
        let want = [
            listener(6379),
            listener(26379),
            worker(0, 0x8000),
            worker(1, 0xc000),
        ];
        for (i, (c, (items, actions))) in converted.iter().zip(want).enumerate() {
            assert_eq!(c.items(), items, "rule {i}");
            assert_eq!(c.actions(), actions, "rule {i}");
        }
        // The numbers behind the names, as a driver reads them.
        let tcp = &converted[0].items()[2];
        assert_eq!(tcp.spec.as_ref().unwrap()[2..4], [0x18, 0xeb], "6379");
        assert_eq!(FlowMark::Listener { port: 6379 }.id(), 0x0001_18eb);
        assert_eq!(FlowMark::Worker { queue: 1 }.id(), 0x0002_0001);
    }

    #[test]
    fn one_worker_converts_to_a_queue_action_and_rss_lists_every_queue() {
        let mut plan = two_workers(ADDR, 32768..=65535);
        plan.workers.truncate(1);
        let converted = convert(&plan.rules().unwrap()).unwrap();
        assert_eq!(
            converted[0].actions()[1],
            ConvertedAction::Queue { index: 0 }
        );

        let rule = FlowRule {
            group: 0,
            priority: 3,
            pattern: vec![FlowItem::Eth],
            actions: vec![FlowAction::Rss(vec![5, 2, 7])],
        };
        let c = &convert(std::slice::from_ref(&rule)).unwrap()[0];
        assert_eq!(c.attr().priority, 3);
        assert_eq!(c.items(), vec![eth_any()]);
        assert!(
            matches!(&c.actions()[0], ConvertedAction::Rss { queues, .. } if queues == &[5, 2, 7]),
            "the queue list is copied whole: {c:?}"
        );
    }

    #[test]
    fn unset_fields_convert_to_no_spec_or_an_empty_mask() {
        let rule = FlowRule {
            group: 1,
            priority: 0,
            pattern: vec![
                FlowItem::Eth,
                FlowItem::Ipv4 { dst: None },
                FlowItem::Tcp {
                    src: Some(MaskedPort::exact(80)),
                    dst: None,
                },
            ],
            actions: vec![FlowAction::Queue(2)],
        };
        let c = &convert(std::slice::from_ref(&rule)).unwrap()[0];
        assert_eq!(c.attr().group, 1);
        let items = c.items();
        assert_eq!(items[1].spec, Some(vec![0; HEADER]), "any address");
        assert_eq!(items[1].mask, Some(vec![0; HEADER]));
        let mut src = vec![0; HEADER];
        src[0..2].copy_from_slice(&80u16.to_be_bytes());
        assert_eq!(items[2].spec.as_ref(), Some(&src));
        src[0..2].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(items[2].mask.as_ref(), Some(&src));
    }

    #[test]
    fn an_ipv6_connection_rule_converts_with_its_address_and_rss_hashes_ipv6() {
        let local: std::net::SocketAddr = "[2001:db8::5]:443".parse().unwrap();
        let mark = crate::tcp::classify::conn_mark(9).unwrap();
        let rule = FlowRule::connection(local, 50000, mark, 1, 0);
        let c = &convert(std::slice::from_ref(&rule)).unwrap()[0];
        let items = c.items();
        assert_eq!(items.len(), 3);
        let ip = &items[1];
        assert_eq!(
            (ip.kind, ip.name.as_str()),
            (sys::RTE_FLOW_ITEM_TYPE_IPV6, "IPV6")
        );
        // rte_flow_item_ipv6: the 40-byte header (dst_addr at 24), then
        // the extension-header bits.
        assert_eq!(size_of::<sys::rte_flow_item_ipv6>(), 44);
        let (mut spec, mut mask) = (vec![0u8; 44], vec![0u8; 44]);
        spec[24..40].copy_from_slice(
            &"2001:db8::5"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        mask[24..40].copy_from_slice(&[0xff; 16]);
        assert_eq!(ip.spec.as_ref(), Some(&spec));
        assert_eq!(ip.mask.as_ref(), Some(&mask));
        let mut ports = vec![0; HEADER];
        ports[0..2].copy_from_slice(&50000u16.to_be_bytes());
        ports[2..4].copy_from_slice(&443u16.to_be_bytes());
        assert_eq!(items[2].spec.as_ref(), Some(&ports));
        assert_eq!(
            c.actions(),
            [
                ConvertedAction::Mark { id: mark },
                ConvertedAction::Queue { index: 1 }
            ]
        );

        let spread = FlowRule {
            actions: vec![FlowAction::Rss(vec![0, 1])],
            ..rule
        };
        let c = &convert(std::slice::from_ref(&spread)).unwrap()[0];
        assert!(
            matches!(&c.actions()[0], ConvertedAction::Rss { types, .. } if *types == sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP),
            "{c:?}"
        );
    }

    #[test]
    fn dpdk_refuses_types_it_does_not_know() {
        let rules = two_workers(ADDR, 32768..=65535).rules().unwrap();
        let mut c = CRule::new(&rules[0]);
        c.items[1].type_ = 0x7fff;
        let err = ConvertedRule::from_c(&c).unwrap_err();
        assert!(err.contains("unknown item type"), "{err}");

        let mut c = CRule::new(&rules[0]);
        c.actions[0].type_ = 0x7fff;
        let err = ConvertedRule::from_c(&c).unwrap_err();
        assert!(err.contains("unknown action type"), "{err}");
    }
}
