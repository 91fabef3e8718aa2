#!/usr/bin/python3
"""Hostile input against a live TCP connection (RFC 5961, RFC 7323 PAWS,
malformed options, zero windows), for tpa's and the kernel's TCP alike,
over IPv4 or IPv6 (the addresses say which: IPv6 ones have a colon).

    tcp_hostile.py IFACE PEER_ADDR PEER_PORT TARGET_ADDR TARGET_PORT
                   [--only NAME,NAME...] [--observe SECONDS]
                   [--target-wscale N] [--peer-wscale N] [--pause-pid PID]

Runs in the namespace of the connection's legitimate PEER (the end whose
segments it forges), on the interface IFACE that carries the connection.
It watches both directions on an AF_PACKET socket to learn the live
sequence space (the TARGET's RCV.NXT and window from the TARGET's own
segments, its SND.UNA from the peer's acknowledgments, its SND.NXT from the
highest byte it sent, the timestamps both ways), then forges segments from
PEER to TARGET (built by hand, checked against scapy's at start-up), one
injection at a time, and watches the target's answer for --observe seconds
(0.25 by default).

The zero-window injection is forged in a pause of the stream (nothing of
the target's in flight), with a TSval one tick ahead that the target
echoes once it has read it. Its line also lists the target's data
segments at or past the acknowledged point that echo it, seen before the
peer's next segment (`zero_window_segments`: milliseconds after the
injection, offset from the acknowledged point, length): a sender that
honours the window sends only window probes there, each at offset 0 (the
first unacknowledged byte, again and again), never the stream's next
bytes. With --pause-pid, the process PID (the peer's application) is
stopped right after the zero window is sent and continued once the
window reopens: an application that reads makes its kernel send window
updates of its own, which would reopen the window before the target's
persist timer fires; stopped, its kernel still acknowledges (and so
reopens the window on) the target's window probes.

The window scales are learnt from `ss -ti` on the peer's socket when the
peer is a kernel socket in this namespace; --target-wscale / --peer-wscale
give them otherwise.

Every injection prints one JSON line: its name, what the RFCs expect, the
state it was computed from, the segment sent, and what came back: the
target's segments without payload (ACKs, challenge ACKs, RSTs) in full,
and how many segments with payload the target sent meanwhile (the live
transfer; a stack may send its challenge or duplicate ACK on a data
segment, which the kit cannot tell from the others: the stack's counters
say). The last line is {"done": N}.

The default battery, in this order: rst-in-window, rst-below-window,
rst-above-window, syn-in-window, ack-unsent, ack-too-old,
data-above-window, data-below-window, data-old-tsval, opt-len0,
opt-past-header, opt-mss-len3, opt-sack5, opt-ts-truncated, zero-window
(then window-reopen). Only when named with --only: rst-burst (ten
in-window RSTs back to back: one challenge ACK, the rest rate limited)
and rst-exact (resets the connection, so it must come last).

The script forges only the connection it is given, on the interface it is
given; it is a test tool for namespaces the tests create.
"""

import argparse
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from scapy.all import IP, TCP, Ether, IPv6, Raw  # python3-scapy (Debian)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
HALF = 1 << 31
# How far ahead of the peer's latest TSval a forged segment's is: the
# watcher may not have seen the peer's latest segment yet (1 ms ticks).
TS_AHEAD = 5
# The longest an injection waits for an answer on a timer (see `inject`).
UNTIL_CAP = 3.0
# How many times an injection whose observation the peer spoilt is made.
SPOILT_TRIES = 10


def seq_add(a, b):
    return (a + b) % (1 << 32)


def seq_after(a, b):
    """a > b in sequence space."""
    return 0 < ((a - b) % (1 << 32)) < HALF


def internet_checksum(data):
    """RFC 1071 one's-complement sum of `data`, complemented."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_tcp_frame(eth_src, eth_dst, src, dst, seq, ack, flags, win,
                   options=b"", payload=b""):
    """An Ethernet + IPv4 + TCP frame from `src` to `dst` ((addr, port)
    pairs), checksums filled. Built by hand rather than with scapy: a burst
    of forged frames must leave before the peer's next segment moves the
    state on, and scapy takes most of a millisecond per frame. Checked
    against scapy once at start-up (`check_forge_against_scapy`)."""
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, ack,
                      (5 + len(options) // 4) << 4, flags, win, 0, 0)
    tcp += options + payload
    saddr, daddr = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    pseudo = saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp))
    csum = internet_checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6,
                     0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return eth_dst + eth_src + b"\x08\x00" + ip + tcp


def ipv6_tcp_frame(eth_src, eth_dst, src, dst, seq, ack, flags, win,
                   options=b"", payload=b""):
    """As `ipv4_tcp_frame`, over IPv6 (no extension header, hop limit 64,
    the TCP checksum over RFC 8200's pseudo-header)."""
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, ack,
                      (5 + len(options) // 4) << 4, flags, win, 0, 0)
    tcp += options + payload
    saddr = socket.inet_pton(socket.AF_INET6, src[0])
    daddr = socket.inet_pton(socket.AF_INET6, dst[0])
    pseudo = saddr + daddr + struct.pack("!I3xB", len(tcp), 6)
    csum = internet_checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, saddr, daddr)
    return eth_dst + eth_src + b"\x86\xdd" + ip + tcp


def tcp_frame(eth_src, eth_dst, src, dst, *rest, **kw):
    """An IPv6 frame when the addresses are IPv6, else an IPv4 one."""
    build = ipv6_tcp_frame if ":" in src[0] else ipv4_tcp_frame
    return build(eth_src, eth_dst, src, dst, *rest, **kw)


def ip_header_len(frame):
    """The IP header's length in a frame `tcp_frame` built."""
    return 40 if frame[12:14] == b"\x86\xdd" else 20


def check_forge_against_scapy():
    """The hand-built frames (IPv4 and IPv6) equal scapy's, byte for byte."""
    eth_src, eth_dst = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    options = ts_option(123456, 654321)
    for src, dst, ip in [
        (("10.9.8.7", 40000), ("10.9.8.6", 5001),
         lambda s, d: IP(src=s, dst=d, ttl=64, id=1)),
        (("2001:db8::7", 40000), ("2001:db8::6", 5001),
         lambda s, d: IPv6(src=s, dst=d, hlim=64)),
    ]:
        ours = tcp_frame(eth_src, eth_dst, src, dst, 0xFFFFFFF0, 77,
                         RST | ACK, 512, options, b"odd")
        theirs = bytes(Ether(src=eth_src, dst=eth_dst)
                       / ip(src[0], dst[0])
                       / TCP(sport=src[1], dport=dst[1], seq=0xFFFFFFF0, ack=77,
                             flags=RST | ACK, window=512,
                             dataofs=5 + len(options) // 4)
                       / Raw(options + b"odd"))
        if ours != theirs:
            raise SystemExit(f"the hand-built frame differs from scapy's:\n"
                             f"{ours.hex()}\n{theirs.hex()}")


class Segment:
    """A TCP segment seen on the wire, over IPv4 or IPv6 (without
    extension headers)."""

    __slots__ = ("t", "src", "sport", "dst", "dport", "seq", "ack", "flags",
                 "win", "length", "tsval", "tsecr", "eth_src", "eth_dst",
                 "raw")

    @staticmethod
    def parse(frame, t):
        ether_type = frame[12:14]
        ip = frame[14:]
        if ether_type == b"\x08\x00" and len(ip) >= 40:
            ihl = (ip[0] & 0x0F) * 4
            if ip[0] >> 4 != 4 or ip[9] != 6 or len(ip) < ihl + 20:
                return None
            total = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:total]
            src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        elif ether_type == b"\x86\xdd" and len(ip) >= 60:
            if ip[0] >> 4 != 6 or ip[6] != 6:
                return None
            total = 40 + struct.unpack("!H", ip[4:6])[0]
            tcp = ip[40:total]
            src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
        else:
            return None
        if len(tcp) < 20:
            return None
        s = Segment()
        s.t = t
        s.raw = frame
        s.eth_dst, s.eth_src = frame[0:6], frame[6:12]
        s.src, s.dst = src, dst
        (s.sport, s.dport, s.seq, s.ack, off, s.flags,
         s.win) = struct.unpack("!HHIIBBH", tcp[:16])
        hl = (off >> 4) * 4
        s.length = max(0, len(tcp) - hl)
        s.tsval = s.tsecr = None
        opts = tcp[20:hl]
        i = 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2:
                break
            size = opts[i + 1]
            if kind == 8 and size == 10 and i + 10 <= len(opts):
                s.tsval, s.tsecr = struct.unpack("!II", opts[i + 2:i + 10])
            i += size
        return s

    def summary(self):
        flags = "".join(c for c, b in zip("FSRPAU", (1, 2, 4, 8, 16, 32))
                        if self.flags & b)
        out = {"flags": flags, "seq": self.seq, "ack": self.ack,
               "win": self.win, "len": self.length}
        if self.tsval is not None:
            out["tsval"], out["tsecr"] = self.tsval, self.tsecr
        return out


class Watcher:
    """Watches the connection on IFACE and keeps its live state."""

    def __init__(self, iface, peer, target):
        self.peer, self.target = peer, target
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.htons(ETH_P_ALL))
        self.sock.bind((iface, 0))
        self.lock = threading.Condition()
        self.from_target = []  # every segment from the target, in order
        self.last_peer = None  # the peer's latest segment
        self.peer_count = 0  # how many segments of the peer were seen
        self.peer_times = []  # when each was seen
        self.last_target = None
        self.target_snd_nxt = None
        self.peer_max_win = 0
        self.ours = set()  # frames we sent: not the peer's
        self.stopped = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stopped:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            now = time.monotonic()
            s = Segment.parse(frame, now)
            if s is None:
                continue
            with self.lock:
                if ((s.src, s.sport, s.dst, s.dport) ==
                        self.target + self.peer):
                    self.from_target.append(s)
                    self.last_target = s
                    end = seq_add(s.seq, s.length + bool(s.flags & (SYN | FIN)))
                    if (self.target_snd_nxt is None
                            or seq_after(end, self.target_snd_nxt)):
                        self.target_snd_nxt = end
                    self.lock.notify_all()
                elif ((s.src, s.sport, s.dst, s.dport) == self.peer + self.target
                      and addr[2] == PACKET_OUTGOING and frame not in self.ours):
                    self.last_peer = s
                    self.peer_count += 1
                    self.peer_times.append(now)
                    self.peer_max_win = max(self.peer_max_win, s.win)
                    self.lock.notify_all()

    def wait_live(self, timeout=10.0):
        """Waits until both directions were seen."""
        end = time.monotonic() + timeout
        with self.lock:
            while self.last_peer is None or self.last_target is None:
                left = end - time.monotonic()
                if left <= 0:
                    raise SystemExit(
                        f"no traffic of {self.peer} <-> {self.target} seen in "
                        f"{timeout} s: is the connection alive on this interface?")
                self.lock.wait(left)

    def wait_peer_after(self, count, timeout):
        """Waits (lock held) for a peer segment newer than `count`."""
        end = time.monotonic() + timeout
        while self.peer_count == count:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.lock.wait(left)

    def send_if_current(self, frames, count):
        """Sends `frames` unless the peer sent a segment since the state
        numbered `count` was read (their timestamps would be stale: a PAWS
        drop that is not the test's). True when sent."""
        with self.lock:
            if self.peer_count != count:
                return False
            self.ours.update(frames)
            for f in frames:
                self.sock.send(f)
            return True

    def first_peer_after(self, t):
        """When the peer's first segment after `t` was seen (None: none)."""
        with self.lock:
            return next((p for p in self.peer_times if p > t), None)

    def since(self, t):
        with self.lock:
            return [s for s in self.from_target if s.t >= t]


def wscales_from_ss(peer, target):
    """(target's shift, peer's shift) from `ss -ti` on the peer's socket."""
    def endpoint(addr, port):
        return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    out = subprocess.run(
        ["ss", "-tin", "state", "established", "src", endpoint(*peer),
         "dst", endpoint(*target)],
        capture_output=True, text=True, check=False).stdout
    m = re.search(r"wscale:(\d+),(\d+)", out)
    if not m:
        return None
    # On the peer's socket: snd_wscale (the target's shift), rcv_wscale.
    return int(m.group(1)), int(m.group(2))


def ts_option(tsval, tsecr):
    return b"\x01\x01\x08\x0a" + struct.pack("!II", tsval, tsecr)


class Kit:
    def __init__(self, args):
        self.peer = (args.peer_addr, args.peer_port)
        self.target = (args.target_addr, args.target_port)
        self.observe = args.observe
        self.pause_pid = args.pause_pid
        self.w = Watcher(args.iface, self.peer, self.target)
        self.w.wait_live()
        scales = wscales_from_ss(self.peer, self.target)
        self.target_shift = args.target_wscale
        self.peer_shift = args.peer_wscale
        if scales is not None:
            if self.target_shift is None:
                self.target_shift = scales[0]
            if self.peer_shift is None:
                self.peer_shift = scales[1]
        if self.target_shift is None or self.peer_shift is None:
            raise SystemExit(
                "window scales unknown: no kernel socket for the peer here; "
                "give --target-wscale and --peer-wscale")
        self.count = 0

    def state(self):
        """The target's sequence space, read right after the peer's next
        segment (so that the forged one goes out before the peer's
        timestamp clock moves on), or after 0.5 s without one."""
        w = self.w
        with w.lock:
            w.wait_peer_after(w.peer_count, 0.5)
            lt, lp = w.last_target, w.last_peer
            st = {
                "count": w.peer_count,
                "rcv_nxt": lt.ack,  # what the target acknowledges
                "rcv_wnd": lt.win << self.target_shift,
                "snd_una": lp.ack,  # what the peer acknowledged
                "snd_nxt": w.target_snd_nxt,
                "max_snd_wnd": w.peer_max_win << self.peer_shift,
                "peer_seq": lp.seq,
                "peer_win": lp.win,
                "ts": lp.tsval is not None,
                "peer_tsval": lp.tsval,
                "target_tsval": lt.tsval,
                "eth_peer": lp.eth_src,
                "eth_target": lp.eth_dst,
            }
        return st

    def quiet_state(self, quiet=0.003):
        """As `state`, at a moment when the peer has acknowledged all the
        target sent and the target has sent nothing for `quiet` seconds:
        none of the target's segments is in flight, so whatever it sends
        after an injection, it sent after it (the zero window's test needs
        a stream that pauses, as the tests' paced ones do)."""
        w = self.w
        for _ in range(200):
            st = self.state()
            time.sleep(quiet)
            with w.lock:
                if (w.peer_count == st["count"]
                        and w.target_snd_nxt == st["snd_nxt"]
                        and st["snd_una"] == st["snd_nxt"]
                        and time.monotonic() - w.last_target.t >= quiet):
                    return st
        raise SystemExit("the target's stream never paused: no quiet moment to forge in")

    def forge(self, st, flags, seq, ack, win=None, options=None, payload=b"",
              ts_ahead=TS_AHEAD):
        """A frame from the peer to the target; options default to a
        timestamp option `ts_ahead` ticks past the peer's latest (when the
        connection uses timestamps), so that PAWS passes it even when the
        peer's clock moved on meanwhile. A segment that the target accepts
        must not be ahead (ts_ahead=0): its TSval would become TS.Recent
        and PAWS would drop the peer's next segments."""
        if options is None:
            options = (ts_option(seq_add(st["peer_tsval"], ts_ahead),
                                 st["target_tsval"] or 0)
                       if st["ts"] else b"")
        assert len(options) % 4 == 0 and len(options) <= 40, options
        if win is None:
            win = st["peer_win"]
        return tcp_frame(st["eth_peer"], st["eth_target"], self.peer,
                         self.target, seq, ack, flags, win, options, payload)

    def inject(self, name, expect, make, extra=None, state=None, then=None,
               until=None, spoilt=None):
        """Forges `make(state)` (a list of frames) from a fresh state (of
        `state`, by default `self.state`) and sends it, then calls `then`;
        prints what came back within --observe seconds, or longer, up to
        UNTIL_CAP seconds, while `until(t, segments since)` is false (an
        answer on a timer: a loaded machine delays it past --observe).
        When `spoilt(t, segments since)` says the peer's own traffic got in
        the way of the observation (it undoes `then` itself), the injection
        is made again, up to SPOILT_TRIES times; the line counts them."""
        for attempt in range(SPOILT_TRIES):
            for _ in range(100):
                st = (state or self.state)()
                frames = make(st)
                t = time.monotonic()
                if self.w.send_if_current(frames, st["count"]):
                    if then is not None:
                        then()
                    break
            else:
                raise SystemExit(f"{name}: the peer's segments come too fast to forge in between")
            time.sleep(self.observe)
            cap = time.monotonic() + UNTIL_CAP
            while (until is not None and not until(t, self.w.since(t))
                   and time.monotonic() < cap):
                time.sleep(0.01)
            after = self.w.since(t)
            if spoilt is None or attempt + 1 == SPOILT_TRIES or not spoilt(t, after):
                break
        control = [s.summary() for s in after if s.length == 0]
        data = sum(1 for s in after if s.length > 0)
        sent = Segment.parse(frames[0], t).summary()
        tcp = frames[0][14 + ip_header_len(frames[0]):]
        sent["options"] = tcp[20:(tcp[12] >> 4) * 4].hex()
        line = {
            "injection": name,
            "expect": expect,
            "state": {k: v for k, v in st.items()
                      if not k.startswith("eth") and k != "count"},
            "sent": sent,
            "copies": len(frames),
            "answers": control,
            "target_data_segments": data,
            "spoilt": attempt,
        }
        if extra is not None:
            line.update(extra(st, t, after))
        print(json.dumps(line), flush=True)
        self.count += 1

    # --- the injections -----------------------------------------------------

    def run(self, names):
        for name in names:
            getattr(self, "i_" + name.replace("-", "_"))()

    def in_window(self, st):
        """A sequence number inside the target's window, not RCV.NXT."""
        return seq_add(st["rcv_nxt"], max(1, st["rcv_wnd"] // 2))

    def i_rst_in_window(self):
        self.inject("rst-in-window", "challenge ACK (RFC 5961 3.2), no reset",
                    lambda st: [self.forge(st, RST | ACK, self.in_window(st),
                                           st["snd_una"])])

    def i_rst_below_window(self):
        self.inject("rst-below-window", "ignored (RFC 5961 3.2)",
                    lambda st: [self.forge(st, RST | ACK,
                                           seq_add(st["rcv_nxt"], -(1 << 20)),
                                           st["snd_una"])])

    def i_rst_above_window(self):
        self.inject("rst-above-window", "ignored (RFC 5961 3.2)",
                    lambda st: [self.forge(
                        st, RST | ACK,
                        seq_add(st["rcv_nxt"], st["rcv_wnd"] + (1 << 20)),
                        st["snd_una"])])

    def i_syn_in_window(self):
        self.inject("syn-in-window", "challenge ACK (RFC 5961 4.2), no reset",
                    lambda st: [self.forge(st, SYN, self.in_window(st), 0)])

    # The ACK-field injections sit one past RCV.NXT (acceptable, zero
    # length): at RCV.NXT exactly their TSval (ahead of the peer's, see
    # TS_AHEAD) would become TS.Recent in both Linux (its fast path stores
    # it before the ACK check) and tpa (RFC 7323 4.3 order), and PAWS would
    # drop the real peer's next segments: the kit's doing, not the stack's.
    def i_ack_unsent(self):
        self.inject("ack-unsent",
                    "dropped, an ACK at most (RFC 5961 5.2, RFC 9293: beyond SND.NXT)",
                    lambda st: [self.forge(st, ACK, seq_add(st["rcv_nxt"], 1),
                                           seq_add(st["snd_nxt"], 1 << 20))])

    def i_ack_too_old(self):
        # Far below SND.UNA - MAX.SND.WND whatever the window was.
        self.inject("ack-too-old",
                    "challenge ACK, dropped (RFC 5961 5.2: before SND.UNA - MAX.SND.WND)",
                    lambda st: [self.forge(st, ACK, seq_add(st["rcv_nxt"], 1),
                                           seq_add(st["snd_una"], -(1 << 30)))])

    def i_data_above_window(self):
        # The first byte just past the window.
        self.inject("data-above-window", "dropped, duplicate ACK (RFC 9293 3.10.7.4)",
                    lambda st: [self.forge(
                        st, ACK | PSH, seq_add(st["rcv_nxt"], st["rcv_wnd"]),
                        st["snd_una"], payload=b"X" * 100)])

    def i_data_below_window(self):
        # Ends 100 bytes before RCV.NXT.
        self.inject("data-below-window", "dropped, duplicate ACK (RFC 9293 3.10.7.4)",
                    lambda st: [self.forge(
                        st, ACK | PSH, seq_add(st["rcv_nxt"], -200),
                        st["snd_una"], payload=b"X" * 100)])

    def i_data_old_tsval(self):
        def make(st):
            if not st["ts"]:
                raise SystemExit("data-old-tsval: the connection has no timestamps")
            old = seq_add(st["peer_tsval"], -(1 << 30))
            return [self.forge(st, ACK | PSH, st["rcv_nxt"], st["snd_una"],
                               options=ts_option(old, st["target_tsval"]),
                               payload=b"X" * 100)]
        self.inject("data-old-tsval", "dropped by PAWS, duplicate ACK (RFC 7323 5.3)", make)

    def malformed(self, name, opts):
        def make(st):
            o = opts(st) if callable(opts) else opts
            o = o + b"\x00" * (-len(o) % 4)
            return [self.forge(st, ACK, st["rcv_nxt"], st["snd_una"], options=o)]
        self.inject(name,
                    "no crash; dropped or options ignored (no payload: a duplicate ACK at most)",
                    make)

    def i_opt_len0(self):
        self.malformed("opt-len0", b"\x01\x01\x1e\x00" + b"\x01" * 8)

    def i_opt_past_header(self):
        # A TS option whose length (40) runs past the 12 bytes of options.
        self.malformed("opt-past-header", b"\x01\x01\x08\x28" + b"\x00" * 8)

    def i_opt_mss_len3(self):
        self.malformed("opt-mss-len3", b"\x02\x03\x05\x01")

    def i_opt_sack5(self):
        # SACK claiming 5 blocks (42 bytes): the 40-byte option space ends
        # inside the fifth block.
        def opts(st):
            blocks = b"".join(
                struct.pack("!II", seq_add(st["snd_una"], 1000 * i),
                            seq_add(st["snd_una"], 1000 * i + 500))
                for i in range(5))
            return (b"\x05\x2a" + blocks)[:40]
        self.malformed("opt-sack5", opts)

    def i_opt_ts_truncated(self):
        # A TS option that starts 6 bytes before the end of the options.
        self.malformed("opt-ts-truncated", b"\x01\x01\x08\x0a\x00\x00\x00\x01")

    def i_zero_window(self):
        # Acknowledge all the target sent, with a zero window: it must send
        # no new data (window probes only) until a window update reopens it
        # (ours below, or the peer's own next ACK, which a live peer sends).
        acked = {}

        # Its TSval is one tick past the peer's latest: the target takes it
        # as TS.Recent and echoes it in every segment it sends after it
        # read the zero window (and not in those it sent before), which
        # tells the two apart. The forge waits for a pause in the stream,
        # so the peer's next segment comes ticks later, past it.
        def zero(st):
            acked["at"] = st["snd_nxt"]
            acked["win"] = st["peer_win"]
            acked["tsval"] = seq_add(st["peer_tsval"], 1) if st["ts"] else None
            return [self.forge(st, ACK, st["rcv_nxt"], st["snd_nxt"], win=0,
                               ts_ahead=1 if st["ts"] else 0)]

        def after_zero(s):
            """Sent once the target had read the zero window (every
            segment, without timestamps)."""
            return (acked["tsval"] is None or
                    (s.tsecr is not None and not seq_after(acked["tsval"], s.tsecr)))
        def new_data(st, t, after):
            # Data at or past the acknowledged point, sent after the target
            # read the zero window (it echoes its TSval) and seen before
            # the peer's next segment (which may reopen the window).
            until = self.w.first_peer_after(t) or float("inf")
            into = [s for s in after if s.length > 0 and s.t < until
                    and not seq_after(acked["at"], s.seq) and after_zero(s)]
            return {"new_data_before_peer_update": len(into),
                    "zero_window_segments": [
                        [round((s.t - t) * 1000, 1),
                         (s.seq - acked["at"]) % (1 << 32), s.length]
                        for s in into]}
        def probed(t, after):
            # A probe (after the target's RTO) or the peer's next segment.
            return (new_data(None, t, after)["new_data_before_peer_update"] > 0
                    or self.w.first_peer_after(t) is not None)
        def spoilt(t, after):
            # The peer's kernel spoke first (its application read just
            # before it was stopped, say, and the window update reopened
            # the window before the target's persist timer could fire): no
            # probe to see. Let the peer go on and try again.
            if new_data(None, t, after)["new_data_before_peer_update"] > 0:
                return False
            self.signal_pause(signal.SIGCONT)
            time.sleep(0.05)
            return True
        self.inject("zero-window",
                    "no new data until the window reopens; window probes after an RTO",
                    zero, new_data, state=self.quiet_state,
                    then=lambda: self.signal_pause(signal.SIGSTOP), until=probed,
                    spoilt=spoilt)

        # The window it reopens to is the one the peer announced before the
        # zero window, at least: the peer's application is stopped by now,
        # so its own latest window may be too small for the target's
        # probe (a whole segment) to leave room for new data.
        def reopen(st):
            una = acked["at"] if seq_after(acked["at"], st["snd_una"]) else st["snd_una"]
            win = max(st["peer_win"], acked["win"])
            return [self.forge(st, ACK, st["rcv_nxt"], una, win=win, ts_ahead=0)]
        self.inject("window-reopen", "the target sends new data again", reopen)
        self.signal_pause(signal.SIGCONT)

    def signal_pause(self, sig):
        """Sends `sig` to --pause-pid, if given."""
        if self.pause_pid is not None:
            os.kill(self.pause_pid, sig)

    def i_rst_burst(self):
        self.inject("rst-burst",
                    "challenge ACKs, rate limited (RFC 5961 7), no reset",
                    lambda st: [self.forge(st, RST | ACK,
                                           seq_add(self.in_window(st), i),
                                           st["snd_una"])
                                for i in range(10)])

    def i_rst_exact(self):
        self.inject("rst-exact", "the connection is reset (RFC 5961 3.2: RST at RCV.NXT)",
                    lambda st: [self.forge(st, RST | ACK, st["rcv_nxt"], st["snd_una"])])


BATTERY = ["rst-in-window", "rst-below-window", "rst-above-window",
           "syn-in-window", "ack-unsent", "ack-too-old", "data-above-window",
           "data-below-window", "data-old-tsval", "opt-len0", "opt-past-header",
           "opt-mss-len3", "opt-sack5", "opt-ts-truncated", "zero-window"]
ALL = BATTERY + ["rst-burst", "rst-exact"]


def main():
    # Let the watcher thread take the interpreter often: the state must
    # be fresh when a segment is forged.
    sys.setswitchinterval(0.0005)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("iface")
    p.add_argument("peer_addr")
    p.add_argument("peer_port", type=int)
    p.add_argument("target_addr")
    p.add_argument("target_port", type=int)
    p.add_argument("--only", help="comma-separated injections, run in the given order")
    p.add_argument("--observe", type=float, default=0.25)
    p.add_argument("--target-wscale", type=int)
    p.add_argument("--peer-wscale", type=int)
    p.add_argument("--pause-pid", type=int,
                   help="stop this process during the zero window")
    args = p.parse_args()
    names = args.only.split(",") if args.only else BATTERY
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise SystemExit(f"unknown injections {unknown}; known: {ALL}")
    if "rst-exact" in names and names[-1] != "rst-exact":
        raise SystemExit("rst-exact resets the connection: put it last")
    check_forge_against_scapy()
    kit = Kit(args)
    kit.run(names)
    print(json.dumps({"done": kit.count}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
