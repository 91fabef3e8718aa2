//! tpa's steering program: the symmetric Toeplitz hash of a flow, in eBPF.
//!
//! The program is assembled here, instruction by instruction (no compiler
//! needed), and loaded with `bpf(2)` as a socket filter. AF_PACKET fanout
//! (`PACKET_FANOUT_EBPF`) and multi-queue TAP (`TUNSETSTEERINGEBPF`) run
//! it on every frame and take its return value as the queue.
//!
//! The hash is the one [`MemoryWire`](crate::port::memory::MemoryWire)
//! uses: Toeplitz with the key `0x6d5a` repeated. Because that key repeats
//! every 16 bits, the hash of any input is the hash of the XOR of its
//! 16-bit words: the program folds addresses and ports into one 16-bit
//! word, then applies 16 conditional XORs of key windows. Fields are read
//! relative to the network header (`SKF_NET_OFF`), so one program serves
//! fanout (which sees frames from the network header on) and TAP (which
//! sees them from the Ethernet header on).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::port::memory::rss::KEY;

/// Loads relative to the network header (`SKF_NET_OFF`).
const NET: i32 = -0x10_0000;

// Instruction classes, sizes, modes and operations (linux/bpf.h).
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
const W: u8 = 0x00;
const H: u8 = 0x08;
const B: u8 = 0x10;
const ABS: u8 = 0x20;
const IND: u8 = 0x40;
const MEM: u8 = 0x60;
const K: u8 = 0x00;
const X: u8 = 0x08;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const MOD: u8 = 0x90;
const XOR: u8 = 0xa0;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JSET: u8 = 0x40;
const JNE: u8 = 0x50;
const JLT: u8 = 0xa0;
const EXIT: u8 = 0x90;

// Registers: r0 result of loads, r1 context on entry, r6 context (as
// legacy packet loads require), r7 the folded word, r8 scratch and hash.
const R0: u8 = 0;
const R1: u8 = 1;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;

// Offsets in `struct __sk_buff`.
const SKB_PROTOCOL: i16 = 16;
const SKB_VLAN_PRESENT: i16 = 20;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// A jump target not placed yet.
#[derive(Clone, Copy)]
struct Label(usize);

/// A tiny assembler with forward labels.
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of jumps to patch.
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            insns: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
        }
    }

    fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        });
    }

    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn place(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }

    /// `if dst <op> imm goto l` (`JA` jumps always).
    fn jump(&mut self, op: u8, dst: u8, imm: i32, l: Label) {
        self.fixups.push((self.insns.len(), l));
        self.emit(JMP | op | K, dst, 0, 0, imm);
    }

    /// `r0 = packet[NET + off]` (big-endian, `size` B or H).
    fn load_abs(&mut self, size: u8, off: i32) {
        self.emit(LD | ABS | size, 0, 0, 0, NET + off);
    }

    /// `r7 ^= packet[NET + off] as u16`.
    fn fold_abs(&mut self, off: i32) {
        self.load_abs(H, off);
        self.emit(ALU | XOR | X, R7, R0, 0, 0);
    }

    fn finish(mut self) -> Vec<Insn> {
        for (at, l) in self.fixups {
            let target = self.labels[l.0].expect("every label is placed");
            self.insns[at].off = (target as isize - at as isize - 1) as i16;
        }
        self.insns
    }
}

/// The program's instructions for `queues` queues.
fn assemble(queues: u16) -> Vec<Insn> {
    let mut a = Asm::new();
    let zero = a.label();
    let v4 = a.label();
    let v4_ports = a.label();
    let v6 = a.label();
    let v6_ports = a.label();
    let hash = a.label();

    a.emit(ALU64 | MOV | X, R6, R1, 0, 0);
    a.emit(LDX | MEM | W, R0, R6, SKB_VLAN_PRESENT, 0);
    a.jump(JNE, R0, 0, zero);
    a.emit(LDX | MEM | W, R0, R6, SKB_PROTOCOL, 0);
    // The context holds the ethertype in network byte order.
    a.jump(JEQ, R0, i32::from(0x0800u16.to_be()), v4);
    a.jump(JEQ, R0, i32::from(0x86ddu16.to_be()), v6);
    a.jump(JA, 0, 0, zero);

    // IPv4: not a fragment, TCP or UDP; fold addresses, then the ports
    // after a header of IHL words.
    a.place(v4);
    a.load_abs(H, 6);
    a.emit(ALU | AND | K, R0, 0, 0, 0x3fff);
    a.jump(JNE, R0, 0, zero);
    a.load_abs(B, 9);
    a.jump(JEQ, R0, 6, v4_ports);
    a.jump(JNE, R0, 17, zero);
    a.place(v4_ports);
    a.emit(ALU64 | MOV | K, R7, 0, 0, 0);
    for off in (12..20).step_by(2) {
        a.fold_abs(off);
    }
    a.load_abs(B, 0);
    a.emit(ALU | AND | K, R0, 0, 0, 0x0f);
    a.emit(ALU | LSH | K, R0, 0, 0, 2);
    a.jump(JLT, R0, 20, zero);
    a.emit(ALU64 | MOV | X, R8, R0, 0, 0);
    for off in [0, 2] {
        a.emit(LD | IND | H, 0, R8, 0, NET + off);
        a.emit(ALU | XOR | X, R7, R0, 0, 0);
    }
    a.jump(JA, 0, 0, hash);

    // IPv6: TCP or UDP right after the fixed header; fold addresses and ports.
    a.place(v6);
    a.load_abs(B, 6);
    a.jump(JEQ, R0, 6, v6_ports);
    a.jump(JNE, R0, 17, zero);
    a.place(v6_ports);
    a.emit(ALU64 | MOV | K, R7, 0, 0, 0);
    for off in (8..44).step_by(2) {
        a.fold_abs(off);
    }

    // Toeplitz of the folded word: one key window per set bit.
    a.place(hash);
    a.emit(ALU64 | MOV | K, R8, 0, 0, 0);
    for bit in 0..16 {
        let window = ((KEY << bit) >> 32) as u32;
        // if r7 & bit: r8 ^= window
        a.emit(JMP | JSET | K, R7, 0, 1, 0x8000 >> bit);
        a.emit(JMP | JA | K, 0, 0, 1, 0);
        a.emit(ALU | XOR | K, R8, 0, 0, window as i32);
    }
    a.emit(ALU | MOV | X, R0, R8, 0, 0);
    a.emit(ALU | MOD | K, R0, 0, 0, i32::from(queues.max(1)));
    a.emit(JMP | EXIT, 0, 0, 0, 0);

    a.place(zero);
    a.emit(ALU64 | MOV | K, R0, 0, 0, 0);
    a.emit(JMP | EXIT, 0, 0, 0, 0);
    a.finish()
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The head of `union bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

/// `bpf(cmd, attr)`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised prefix of `union bpf_attr`
    // for `cmd`, of the size passed; the kernel reads it and writes back
    // only fields inside it. Pointers in it are valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// tpa's steering program, loaded into the kernel for a port with `queues`
/// receive queues: it returns the queue a frame belongs to, as
/// [`Steering::Program`](super::Steering::Program) predicts.
#[derive(Debug)]
pub struct SteeringProgram {
    fd: OwnedFd,
    queues: u16,
}

impl SteeringProgram {
    /// Assembles and loads the program (needs `CAP_BPF` or root). A
    /// refusal carries the verifier's log.
    pub fn load(queues: u16) -> io::Result<SteeringProgram> {
        let insns = assemble(queues);
        let license = c"Dual MIT/GPL";
        let mut log = vec![0u8; 1 << 16];
        let mut name = [0u8; 16];
        name[..9].copy_from_slice(b"tpa_steer");
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_name: name,
            ..ProgLoadAttr::default()
        };
        let fd = match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => fd,
            Err(err) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                return Err(io::Error::new(
                    err.kind(),
                    format!("loading the steering program: {err}; verifier: {text}"),
                ));
            }
        };
        Ok(SteeringProgram {
            // SAFETY: a new descriptor the kernel just returned to us.
            fd: unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) },
            queues,
        })
    }

    /// The queues it spreads frames over.
    pub fn queues(&self) -> u16 {
        self.queues
    }

    /// The program's descriptor, for attaching it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Runs the program once in the kernel on an Ethernet frame
    /// (`BPF_PROG_TEST_RUN`, the frame seen from its network header on, as
    /// fanout sees it) and returns the queue it picks.
    pub fn run(&self, frame: &[u8]) -> io::Result<u32> {
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: frame.len() as u32,
            data_in: frame.as_ptr() as u64,
            repeat: 1,
            ..TestRunAttr::default()
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok(attr.retval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_program() {
        for queues in [1, 2, 3, 4, 7, 64] {
            let p = assemble(queues);
            assert!(p.len() < 4096, "{} instructions", p.len());
            for (i, insn) in p.iter().enumerate() {
                if insn.code & 0x07 == JMP && insn.code != JMP | EXIT {
                    let target = i as isize + 1 + isize::from(insn.off);
                    assert!(
                        (0..p.len() as isize).contains(&target),
                        "jump at {i} to {target}"
                    );
                }
            }
            assert_eq!(p.last().unwrap().code, JMP | EXIT);
        }
    }

    /// The trick the program relies on: with a 16-bit-periodic key, the
    /// Toeplitz hash of an input is that of the XOR of its 16-bit words.
    #[test]
    fn folding_to_one_word_keeps_the_hash() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..500 {
            let len = 2 * (1 + (x % 18) as usize);
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let fold = input
                .chunks(2)
                .fold(0u16, |f, w| f ^ u16::from_be_bytes([w[0], w[1]]));
            let mut folded = 0u32;
            for bit in 0..16 {
                if fold & (0x8000 >> bit) != 0 {
                    folded ^= ((KEY << bit) >> 32) as u32;
                }
            }
            assert_eq!(
                folded,
                crate::port::memory::rss::toeplitz(&[&input]),
                "{input:02x?}"
            );
        }
    }
}
