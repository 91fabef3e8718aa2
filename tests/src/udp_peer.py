#!/usr/bin/python3
"""The kernel's side of the UDP echo tests: a client or an echo server on
the kernel's own sockets, written apart from tpa-echo so that the tests do
not check tpa-echo against itself.

    udp_peer.py client 4|6 ADDR PORT COUNT MAX_SIZE WINDOW SEED
        Sends COUNT datagrams of random lengths (4 to MAX_SIZE bytes) and
        random bytes (seeded), at most WINDOW unanswered at once, and checks
        that every one comes back byte for byte. Prints `echoed COUNT`, or
        exits 1 saying what was missing or wrong (with the seed).
    udp_peer.py server 4|6 ADDR PORT
        Echoes every datagram to its sender; prints `ready` once bound.
        Runs until killed.
"""

import random
import socket
import sys

PATIENCE = 5.0  # seconds without an echo before the client gives up


def family(f):
    return socket.AF_INET6 if f == "6" else socket.AF_INET


def fail(msg):
    print(msg, file=sys.stderr, flush=True)
    sys.exit(1)


def client(fam, addr, port, count, max_size, window, seed):
    s = socket.socket(family(fam), socket.SOCK_DGRAM)
    s.connect((addr, port))
    s.settimeout(PATIENCE)
    rng = random.Random(seed)
    out = {}
    sent = got = 0
    while got < count:
        while sent < count and len(out) < window:
            size = rng.randint(4, max_size)
            body = sent.to_bytes(4, "big") + rng.randbytes(size - 4)
            s.send(body)
            out[sent] = body
            sent += 1
        try:
            echo = s.recv(65536)
        except socket.timeout:
            fail(
                f"seed {seed}: after {got} of {count} echoes, none for {PATIENCE} s; "
                f"{len(out)} out, first {sorted(out)[:8]}"
            )
        except ConnectionRefusedError:
            fail(f"seed {seed}: port unreachable from {addr} port {port}")
        seq = int.from_bytes(echo[:4], "big")
        want = out.pop(seq, None)
        if want is None:
            fail(f"seed {seed}: an echo of {len(echo)} bytes for {seq}, not out")
        if echo != want:
            at = next((i for i, (a, b) in enumerate(zip(echo, want)) if a != b), None)
            fail(
                f"seed {seed}: datagram {seq}: {len(echo)} bytes back for {len(want)} sent, "
                f"first difference at {at}"
            )
        got += 1
    print(f"echoed {got}", flush=True)


def server(fam, addr, port):
    s = socket.socket(family(fam), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data, peer)


def main(argv):
    if len(argv) == 8 and argv[0] == "client":
        _, fam, addr, port, count, max_size, window, seed = argv
        client(fam, addr, int(port), int(count), int(max_size), int(window), int(seed))
    elif len(argv) == 4 and argv[0] == "server":
        _, fam, addr, port = argv
        server(fam, addr, int(port))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
