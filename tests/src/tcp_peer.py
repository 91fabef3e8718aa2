#!/usr/bin/python3
"""The kernel's side of the TCP interop tests, on the kernel's own sockets,
written apart from tpa so that tpa is never checked against itself.

    tcp_peer.py client 4|6 ADDR PORT NBYTES
        Connects (cubic), sends NBYTES random bytes while reading what comes back,
        half-closes, reads to the end. Prints
        `sent SHA256 received SHA256 LEN cc NAME` (the digests of what it
        sent and received, how many bytes it received, the congestion
        control the kernel ran).
    tcp_peer.py server 4|6 ADDR PORT
        Listens (cubic), prints `ready`, accepts one connection and echoes it until
        the peer half-closes, then closes. Prints
        `received SHA256 LEN cc NAME`.
"""

import hashlib
import os
import socket
import sys
import threading

PATIENCE = 30.0  # seconds without progress before giving up


def family(f):
    return socket.AF_INET6 if f == "6" else socket.AF_INET


def pin_cubic(s):
    """Cubic for this socket (and a listener's children), whatever the
    namespace's default: the tests report what the kernel ran."""
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")


def congestion(s):
    name = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    return name.rstrip(b"\0").decode()


def client(fam, addr, port, nbytes):
    s = socket.socket(family(fam), socket.SOCK_STREAM)
    s.settimeout(PATIENCE)
    pin_cubic(s)
    s.connect((addr, port))
    cc = congestion(s)
    data = os.urandom(nbytes)

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    sender.join()
    s.close()
    sent = hashlib.sha256(data).hexdigest()
    print(f"sent {sent} received {h.hexdigest()} {n} cc {cc}", flush=True)


def server(fam, addr, port):
    ls = socket.socket(family(fam), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    pin_cubic(ls)
    ls.bind((addr, port))
    ls.listen(1)
    print("ready", flush=True)
    ls.settimeout(PATIENCE)
    c, _ = ls.accept()
    c.settimeout(PATIENCE)
    cc = congestion(c)
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
        c.sendall(chunk)
    c.close()
    ls.close()
    print(f"received {h.hexdigest()} {n} cc {cc}", flush=True)


def main():
    mode, fam, addr, port = sys.argv[1:5]
    if mode == "client":
        client(fam, addr, int(port), int(sys.argv[5]))
    else:
        server(fam, addr, int(port))


if __name__ == "__main__":
    main()
