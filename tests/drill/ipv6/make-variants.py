#!/usr/bin/env python3
"""Writes the IPv6 and IPv4-mapped variants of scripts of tests/drill/.

packetdrill's own suites run each script in every IP mode; ours keeps the
variants as files (reviewable, one verdict each). A variant is the script
with `--ip_version=...` added and, for IPv6, the MSS we announce on `>`
lines lowered to 1440 (1500 less 40 + 20 bytes of headers). Scripts whose
segment sizes follow our MSS are not varied (their data would differ).

usage: python3 tests/drill/ipv6/make-variants.py   (from the repository root)
"""
import pathlib

ROOT = pathlib.Path("tests/drill")
# (source directory, scripts left out: their segments follow our MSS)
SOURCES = {
    "handshake": {"mtu-1280-mss.pkt"},
    "close": set(),
    "reset": set(),
    "keepalive": set(),
    "spurious": set(),
    "recovery": set(),
    "listen": {"cookie-no-timestamps.pkt"},
    "retransmit": {"fast-retransmit-no-sack.pkt", "fast-retransmit-sack.pkt",
                   "rto-go-back.pkt", "tlp.pkt", "two-dupacks-no-retransmit.pkt"},
}
MAPPED = {"handshake", "close", "listen"}


def variant(src: pathlib.Path, version: str) -> str:
    lines = src.read_text().split("\n")
    head = []
    while lines and lines[0].startswith("//"):
        head.append(lines.pop(0))
    out = [f"// {version} variant of tests/drill/{src.parent.name}/{src.name}"
           " (written by make-variants.py; edit the original)."]
    out += head
    out.append(f"--ip_version={version}")
    for line in lines:
        if version == "ipv6" and line.lstrip("+.0123456789 ").startswith(">"):
            line = line.replace("mss 1460", "mss 1440")
        out.append(line)
    return "\n".join(out)


def main() -> None:
    for d, skip in SOURCES.items():
        for src in sorted((ROOT / d).glob("*.pkt")):
            if src.name in skip:
                continue
            (ROOT / "ipv6" / f"{d}-{src.name}").write_text(variant(src, "ipv6"))
            if d in MAPPED:
                (ROOT / "ipv4-mapped" / f"{d}-{src.name}").write_text(
                    variant(src, "ipv4-mapped-ipv6"))


if __name__ == "__main__":
    main()
