#!/usr/bin/python3
"""The kernel's side of the TCP hostile-input tests: a paced bulk sender
and its reader on the kernel's own sockets.

    tcp_hostile_peer.py server ADDR PORT BACKLOG SEED STOP_FILE
        Listens on ADDR:PORT (IPv6 when ADDR has a colon) with BACKLOG, prints `ready`. Its first
        connection gets seeded random bytes, 8 KiB every 10 ms (a transfer
        that stays live while the test injects), until STOP_FILE exists;
        then it shuts its side down, reads the peer's bytes to the end and
        prints `conn1 sent N sha256 HEX received M` (M must be 0: the peer
        sends nothing, so any byte is a forged one the stack accepted).
        Its second connection gets one byte every 10 ms (so that it is seen
        live) until it is reset: it prints `conn2 reset`, or `conn2 alive`
        after 30 s without a reset. Then it exits.
    tcp_hostile_peer.py client ADDR PORT [PORT2]
        Connects, prints `conn1 LOCAL_PORT`, reads to the end and prints
        `conn1 received N sha256 HEX`; then connects again (to PORT2 when
        given: a listener that no SYN flood filled), prints
        `conn2 LOCAL_PORT` and reads that one until it ends or is killed.
    tcp_hostile_peer.py echo-client ADDR PORT SIZE SEED
        Connects (during a SYN flood: through a SYN cookie), sends SIZE
        seeded random bytes while reading the echo, shuts its side down,
        reads to the end and prints
        `conn3 LOCAL_PORT sent N sha256 HEX echoed M sha256 HEX`.
"""

import hashlib
import os
import random
import socket
import sys
import threading
import time

CHUNK = 8192
PAUSE = 0.01


def server(addr, port, backlog, seed, stop_file):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(backlog)
    print("ready", flush=True)
    c, _ = ls.accept()
    rng = random.Random(seed)
    h = hashlib.sha256()
    sent = 0
    while not os.path.exists(stop_file):
        chunk = rng.randbytes(CHUNK)
        c.sendall(chunk)
        h.update(chunk)
        sent += len(chunk)
        time.sleep(PAUSE)
    c.shutdown(socket.SHUT_WR)
    received = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        received += len(b)
    c.close()
    print(f"conn1 sent {sent} sha256 {h.hexdigest()} received {received}", flush=True)
    c, _ = ls.accept()
    end = time.monotonic() + 30
    try:
        while time.monotonic() < end:
            c.send(b"h")
            time.sleep(PAUSE)
        print("conn2 alive", flush=True)
    except (ConnectionResetError, BrokenPipeError):
        print("conn2 reset", flush=True)


def read_to_end(s):
    """Reads `s` to its end of stream: how many bytes, and their sha256."""
    h = hashlib.sha256()
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            return n, h.hexdigest()
        h.update(b)
        n += len(b)


def client(addr, port, port2):
    s = socket.create_connection((addr, port))
    print(f"conn1 {s.getsockname()[1]}", flush=True)
    n, digest = read_to_end(s)
    s.close()
    print(f"conn1 received {n} sha256 {digest}", flush=True)
    s = socket.create_connection((addr, port2))
    print(f"conn2 {s.getsockname()[1]}", flush=True)
    while s.recv(65536):
        pass


def echo_client(addr, port, size, seed):
    s = socket.create_connection((addr, port), timeout=60)
    data = random.Random(seed).randbytes(size)

    def send_all():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send_all)
    sender.start()
    n, digest = read_to_end(s)
    sender.join()
    local = s.getsockname()[1]
    s.close()
    sent = hashlib.sha256(data).hexdigest()
    print(f"conn3 {local} sent {size} sha256 {sent} echoed {n} sha256 {digest}", flush=True)


def main():
    a = sys.argv[1:]
    if a and a[0] == "server" and len(a) == 6:
        server(a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    elif a and a[0] == "client" and len(a) in (3, 4):
        client(a[1], int(a[2]), int(a[-1]))
    elif a and a[0] == "echo-client" and len(a) == 5:
        echo_client(a[1], int(a[2]), int(a[3]), int(a[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
