//! Installing [`FlowRule`]s on a DPDK port with `rte_flow`, and removing them
//! on drop.

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
pub fn install(device: &DpdkDevice, rules: &[FlowRule]) -> Result<InstalledRules, RuleRefused> {
    let port = device.port_id();
    let lowered: Vec<CRule> = rules.iter().map(CRule::new).collect();
    for (index, rule) in lowered.iter().enumerate() {
        let mut err = sys::rte_flow_error::default();
        // SAFETY: the rule's arrays are END-terminated and point into `rule`,
        // alive for the call.
        let rc = unsafe {
            sys::rte_flow_validate(
                port,
                &rule.attr,
                rule.items.as_ptr(),
                rule.actions.as_ptr(),
                &mut err,
            )
        };
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
        // SAFETY: as for validation; DPDK copies what it keeps.
        let flow = unsafe {
            sys::rte_flow_create(
                port,
                &rule.attr,
                rule.items.as_ptr(),
                rule.actions.as_ptr(),
                &mut err,
            )
        };
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
                        types: sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP,
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
        Some(d) => format!("{d} ({generic})"),
        None => generic,
    }
}
