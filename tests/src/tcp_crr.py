#!/usr/bin/python3
"""The kernel's client of the CI soak (tests/tests/tcp_soak.rs): N
connect-request-response-close cycles on the kernel's own sockets, one at
a time, numbered FIRST .. FIRST + N (several clients at once take
disjoint ranges).

    tcp_crr.py HOST PORT FIRST N REQUEST RESPONSE

Cycle i connects, sends a request of REQUEST bytes (i as 8 bytes
little-endian, then request_byte(i, j) for j = 8 .. REQUEST), reads the
response to the server's end of stream and checks it is RESPONSE bytes,
byte j being response_byte(i, j), then closes. The server closes first,
so TIME_WAIT is on its side and the client's ports can be reused.

Each call waits 10 s at most. It prints one line at the end:
`cycles N sent BYTES received BYTES`, and exits with status 1 and a line
on stderr naming the cycle and what went wrong at the first failure.
"""

import socket
import sys


def request_byte(i, j):
    return (i * 31 + j * 7 + 3) & 0xFF


def response_byte(i, j):
    return (i * 13 + j * 5 + 1) & 0xFF


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    first, n, req_len, resp_len = (int(a) for a in argv[2:])
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sent = received = 0
    for i in range(first, first + n):
        request = i.to_bytes(8, "little") + bytes(request_byte(i, j) for j in range(8, req_len))
        want = bytes(response_byte(i, j) for j in range(resp_len))
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((host, port))
            s.sendall(request)
            sent += len(request)
            got = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except OSError as e:
            print(f"tcp_crr: cycle {i}: {e!r} ({sent} bytes sent, {received} received)", file=sys.stderr)
            return 1
        finally:
            s.close()
        received += len(got)
        if bytes(got) != want:
            at = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
            print(
                f"tcp_crr: cycle {i}: response of {len(got)} bytes, want {len(want)}; first difference at {at}",
                file=sys.stderr,
            )
            return 1
    print(f"cycles {n} sent {sent} received {received}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
