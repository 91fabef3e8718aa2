#!/usr/bin/python3
"""The kernel's side of the TCP interop tests: servers and clients on the
kernel's own sockets, written apart from tpa so that tpa is never checked
against itself. IPv4 or IPv6 follows from the address (one with a colon is
IPv6).

    tcp_peer.py [OPTIONS] serve-sink ADDR PORT
        Accepts one connection, reads until end of stream, closes.
    tcp_peer.py [OPTIONS] serve-source ADDR PORT N
        Accepts one connection, sends N pattern bytes, closes.
    tcp_peer.py [OPTIONS] serve-echo ADDR PORT
        Accepts one connection, sends back every byte until end of stream,
        then closes.
    tcp_peer.py [OPTIONS] send HOST PORT N
        Connects, sends N pattern bytes, closes.
    tcp_peer.py [OPTIONS] recv HOST PORT
        Connects, reads until end of stream, closes.
    tcp_peer.py [OPTIONS] echo HOST PORT N
        Connects, sends N pattern bytes while reading what comes back, half
        closes, reads until end of stream, closes.
    tcp_peer.py [--seed S] pattern-sha256 N
        Prints the sha256 of the first N bytes of the pattern.
    tcp_peer.py [--seed S] pattern-hex OFFSET LEN
        Prints the pattern's bytes OFFSET .. OFFSET + LEN in hex.

Servers print `ready` once they listen. Every mode but the pattern's ends
by printing one JSON line: the mode, `sent` and `received` byte counts and
the sha256 of each (`sent_sha256`, `received_sha256`), `mismatch` (the
offset of the first received byte that is not the pattern's, or null;
only for sink/recv with --check), the peer's address, the congestion
control the socket used (`cc`) and a few fields of the kernel's TCP_INFO
read just before close (`tcp_info`: total_retrans, rtt_us, snd_cwnd,
snd_mss, rcv_mss, reordering, sack, timestamps, snd_wscale, rcv_wscale).

OPTIONS
    --seed S      the pattern's seed (default 1)
    --check       receivers check every byte against the pattern of --seed
    --cc NAME     set the socket's congestion control (TCP_CONGESTION), also
                  where the namespace's default cannot be changed
    --bind PORT   clients connect from this local port (SO_REUSEADDR, as a
                  client reconnecting from its port does)
    --timeout T   seconds any one accept, connect, read or write may wait
                  (default 20)
    --deadline D  seconds the whole run may take (default 300)

A run that fails (a timeout, a reset, a refused connection, the deadline)
prints one line to stderr saying what and after how many bytes, and exits
with status 1: a hung peer fails the test, it never hangs it.

The pattern is tperf's (apps/tperf/src/pattern.rs): byte i of the stream
with seed s is byte i % 8 (little-endian) of the 64-bit word
mix(s + (i // 8) * GAMMA mod 2^64), mix being SplitMix64's output function
and GAMMA its increment, so either end computes any byte from its offset.
Here it is computed a chunk at a time, all the chunk's words in one big
Python integer (a 128-bit lane per word, masked back to 64 bits after each
step), which makes it about as fast as the socket.
"""

import hashlib
import json
import signal
import socket
import struct
import sys
import threading
import time

GAMMA = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1
CHUNK = 1 << 20  # bytes of pattern computed at once, and the largest write
LANE = 128  # bits per word in the packed integer (64 of room for products)


class Failure(Exception):
    """A run that cannot finish: the message says why."""


def mix(z):
    """SplitMix64's output function on one word (the reference)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Pattern:
    """The stream of one seed, CHUNK bytes at a time (offsets are multiples
    of 8 except in `at`)."""

    WORDS = CHUNK // 8

    def __init__(self, seed):
        self.seed = seed & M64
        n = self.WORDS
        # ones: 1 in every lane; low: the low 64 bits of every lane.
        self.ones = int.from_bytes((b"\x01" + bytes(LANE // 8 - 1)) * n, "little")
        self.low = self.ones * M64
        # steps: i * GAMMA mod 2^64 in lane i.
        steps = bytearray(n * LANE // 8)
        for i in range(n):
            at = i * LANE // 8
            steps[at : at + 8] = ((i * GAMMA) & M64).to_bytes(8, "little")
        self.steps = int.from_bytes(steps, "little")

    def chunk(self, word_index):
        """The CHUNK bytes from offset 8 * word_index."""
        base = (self.seed + word_index * GAMMA) & M64
        z = (self.steps + base * self.ones) & self.low
        z = (((z ^ (z >> 30)) & self.low) * 0xBF58476D1CE4E5B9) & self.low
        z = (((z ^ (z >> 27)) & self.low) * 0x94D049BB133111EB) & self.low
        z = (z ^ (z >> 31)) & self.low
        lanes = z.to_bytes(self.WORDS * LANE // 8, "little")
        out = bytearray(CHUNK)
        step = LANE // 8
        for b in range(8):
            out[b::8] = lanes[b::step]
        return bytes(out)

    def at(self, offset, length):
        """The bytes at offset .. offset + length (any offset)."""
        out = bytearray()
        first = offset // CHUNK
        while len(out) < (offset % CHUNK) + length:
            out += self.chunk((first + len(out) // CHUNK) * self.WORDS)
        start = offset % CHUNK
        return bytes(out[start : start + length])


class Counter:
    """Bytes of one direction: count, sha256, optional pattern check."""

    def __init__(self, pattern=None):
        self.count = 0
        self.hash = hashlib.sha256()
        self.pattern = pattern
        self.mismatch = None
        self._chunk_index = -1
        self._chunk = b""

    def add(self, data):
        if self.pattern is not None and self.mismatch is None:
            self._check(data)
        self.hash.update(data)
        self.count += len(data)

    def _check(self, data):
        pos = 0
        while pos < len(data):
            offset = self.count + pos
            index = offset // CHUNK
            if index != self._chunk_index:
                self._chunk = self.pattern.chunk(index * Pattern.WORDS)
                self._chunk_index = index
            start = offset % CHUNK
            n = min(len(data) - pos, CHUNK - start)
            want = self._chunk[start : start + n]
            got = data[pos : pos + n]
            if got != want:
                at = next(i for i in range(n) if got[i] != want[i])
                self.mismatch = offset + at
                return
            pos += n


def address(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, (host, port)


def set_cc(sock, cc):
    if cc is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
        except OSError as e:
            raise Failure(f"cannot set congestion control {cc!r}: {e}") from e


def cc_of(sock):
    name = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    return name.split(b"\0", 1)[0].decode()


def tcp_info(sock):
    """A few fields of struct tcp_info (linux/tcp.h)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    (_state, _ca, _retransmits, _probes, _backoff, options, wscale, _flags) = (
        struct.unpack_from("8B", raw, 0)
    )
    u32 = struct.unpack_from("24I", raw, 8)
    # rto ato snd_mss rcv_mss unacked sacked lost retrans fackets
    # last_data_sent last_ack_sent last_data_recv last_ack_recv pmtu
    # rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss reordering
    # rcv_rtt rcv_space total_retrans
    return {
        "total_retrans": u32[23],
        "rtt_us": u32[15],
        "snd_cwnd": u32[18],
        "snd_mss": u32[2],
        "rcv_mss": u32[3],
        "reordering": u32[20],
        "timestamps": bool(options & 1),
        "sack": bool(options & 2),
        "snd_wscale": wscale & 0x0F if options & 4 else None,
        "rcv_wscale": wscale >> 4 if options & 4 else None,
    }


class Run:
    def __init__(self, mode, opts):
        self.mode = mode
        self.opts = opts
        self.pattern = Pattern(opts["seed"])
        check = self.pattern if opts["check"] else None
        self.sent = Counter()
        self.received = Counter(check)
        self.peer = None

    def fail(self, what, err):
        raise Failure(
            f"tcp_peer {self.mode}: {what} failed after {self.sent.count} bytes sent "
            f"and {self.received.count} received (peer {self.peer}): {err!r}"
        )

    def listen(self, host, port):
        fam, addr = address(host, port)
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_cc(ls, self.opts["cc"])
        ls.bind(addr)
        ls.listen(1)
        ls.settimeout(self.opts["timeout"])
        print("ready", flush=True)
        try:
            s, peer = ls.accept()
        except OSError as e:
            self.fail("accept", e)
        ls.close()
        self.peer = peer
        s.settimeout(self.opts["timeout"])
        set_cc(s, self.opts["cc"])
        return s

    def connect(self, host, port):
        fam, addr = address(host, port)
        s = socket.socket(fam, socket.SOCK_STREAM)
        set_cc(s, self.opts["cc"])
        s.settimeout(self.opts["timeout"])
        if self.opts["bind"] is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", self.opts["bind"]))
            except OSError as e:
                self.fail("bind", e)
        self.peer = addr
        try:
            s.connect(addr)
        except OSError as e:
            self.fail("connect", e)
        return s

    def send(self, s, n):
        offset = 0
        while offset < n:
            data = self.pattern.chunk(offset // 8)[: min(CHUNK, n - offset)]
            try:
                s.sendall(data)
            except OSError as e:
                self.fail("send", e)
            self.sent.add(data)
            offset += len(data)

    def drain(self, s, echo=False):
        buf = bytearray(1 << 18)
        view = memoryview(buf)
        while True:
            try:
                got = s.recv_into(buf)
            except OSError as e:
                self.fail("recv", e)
            if got == 0:
                return
            data = bytes(view[:got])
            self.received.add(data)
            if echo:
                try:
                    s.sendall(data)
                except OSError as e:
                    self.fail("echo send", e)
                self.sent.add(data)

    def finish(self, s):
        """Reads TCP_INFO, closes, prints the JSON line."""
        info = tcp_info(s)
        cc = cc_of(s)
        s.close()
        peer = self.peer
        line = {
            "mode": self.mode,
            "sent": self.sent.count,
            "sent_sha256": self.sent.hash.hexdigest(),
            "received": self.received.count,
            "received_sha256": self.received.hash.hexdigest(),
            "mismatch": self.received.mismatch,
            "peer": f"{peer[0]} {peer[1]}" if peer else None,
            "cc": cc,
            "tcp_info": info,
        }
        print(json.dumps(line), flush=True)


RUNNING = []  # the run in progress, for the deadline's message


def run(mode, args, opts):
    r = Run(mode, opts)
    RUNNING.append(r)
    if mode == "serve-sink" and len(args) == 2:
        s = r.listen(args[0], int(args[1]))
        r.drain(s)
    elif mode == "serve-source" and len(args) == 3:
        s = r.listen(args[0], int(args[1]))
        r.send(s, int(args[2]))
        s.shutdown(socket.SHUT_WR)
        r.drain(s)  # the peer's end of stream: everything was delivered
    elif mode == "serve-echo" and len(args) == 2:
        s = r.listen(args[0], int(args[1]))
        r.drain(s, echo=True)
    elif mode == "send" and len(args) == 3:
        s = r.connect(args[0], int(args[1]))
        r.send(s, int(args[2]))
        s.shutdown(socket.SHUT_WR)
        r.drain(s)
    elif mode == "recv" and len(args) == 2:
        s = r.connect(args[0], int(args[1]))
        r.drain(s)
    elif mode == "echo" and len(args) == 3:
        s = r.connect(args[0], int(args[1]))
        errors = []

        def reader():
            try:
                r.drain(s)
            except Failure as e:
                errors.append(e)

        t = threading.Thread(target=reader)
        t.start()
        r.send(s, int(args[2]))
        s.shutdown(socket.SHUT_WR)
        t.join()
        if errors:
            raise errors[0]
    else:
        raise Failure(__doc__)
    r.finish(s)


def main(argv):
    opts = {
        "seed": 1,
        "check": False,
        "cc": None,
        "bind": None,
        "timeout": 20.0,
        "deadline": 300.0,
    }
    while argv and argv[0].startswith("--"):
        flag = argv.pop(0)
        if flag == "--check":
            opts["check"] = True
        elif flag in ("--seed", "--cc", "--bind", "--timeout", "--deadline") and argv:
            value = argv.pop(0)
            key = flag[2:]
            if key == "cc":
                opts[key] = value
            elif key in ("seed", "bind"):
                opts[key] = int(value)
            else:
                opts[key] = float(value)
        else:
            raise Failure(f"unknown option {flag}\n{__doc__}")
    if not argv:
        raise Failure(__doc__)
    mode, args = argv[0], argv[1:]
    if mode == "pattern-sha256" and len(args) == 1:
        n, h, p = int(args[0]), hashlib.sha256(), Pattern(opts["seed"])
        for offset in range(0, n, CHUNK):
            h.update(p.chunk(offset // 8)[: min(CHUNK, n - offset)])
        print(h.hexdigest(), flush=True)
        return
    if mode == "pattern-hex" and len(args) == 2:
        print(Pattern(opts["seed"]).at(int(args[0]), int(args[1])).hex(), flush=True)
        return
    deadline = opts["deadline"]

    def expired(_sig, _frame):
        moved = ""
        if RUNNING:
            r = RUNNING[0]
            moved = (
                f" ({r.sent.count} bytes sent and {r.received.count} received, "
                f"peer {r.peer})"
            )
        raise Failure(f"tcp_peer {mode}: the run took more than {deadline} s{moved}")

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    run(mode, args, opts)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Failure as e:
        print(e, file=sys.stderr, flush=True)
        sys.exit(1)
