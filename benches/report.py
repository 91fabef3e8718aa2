#!/usr/bin/env python3
"""Regenerates the tables of doc/benchmarks.md from criterion's output.

    python3 benches/report.py            # rewrite every table that has data
    python3 benches/report.py --list     # which tables have data, from when
    python3 benches/report.py --lint     # figures in the prose outside tables
    python3 benches/report.py --runs r1 r2 r3   # combine runs saved with
                                         # criterion's --save-baseline

Each table in the doc sits between two marker comments,

    <!-- table:NAME -->
    ...generated, do not edit...
    <!-- /table -->

and NAME is a key of TABLES below. The script reads, for every benchmark,
`target/criterion/**/<baseline>/estimates.json` (the median's point
estimate, ns per iteration), `benchmark.json` (group, function, throughput)
and `sample.json` (how many samples), so the medians and the ratios in a
table always come from the same files. A table whose benchmarks were not
run in this checkout is left as it is (and `--list` says so); a table whose
benchmarks come from runs more than an hour apart says so under it, because
its ratios are then not same-run ratios.

Adding a table is one entry in TABLES plus the two markers in the doc.
A bench that measures outside criterion (say, interleaved runs timed with
the thread's CPU clock, or instruction counts under callgrind) can feed the
same tables by writing JSON files into `target/bench-results/`: a list of
records

    {"group": "...", "function": "...", "ns_per_iter": 123.4,
     "instructions_per_iter": 5678, "elements": 32, "samples": 41,
     "baseline": "new"}

(one of `ns_per_iter` and `instructions_per_iter` at least; `elements`,
`samples` and `baseline` are optional), which the script reads like
criterion's output; its tables name `target/bench-results/` as their source.
A Rust bench writes them with `tpa_benches::results::write(NAME, &records)`.

Only the standard library is used.
"""

import argparse
import datetime
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "doc" / "benchmarks.md"
FASTEST = "fastest"
ONE_HOUR = 3600.0


@dataclass
class Table:
    """How one bench group (or several) becomes one table.

    groups: criterion group ids, in row order.
    functions: the order of the first rows; functions that ran and are not
        listed follow, fastest first.
    baseline: the function each ratio divides by (in the same group and
        run), FASTEST for the fastest row of the group, or a dict from each
        function to its own baseline function.
    baseline_label: how the ratio column's header names the baseline.
    labels: function id -> text of the first column; `{crate}` is replaced
        by the crate's version from Cargo.lock.
    columns: any of "group", "name", "time", "mpps", "gbps", "ratio",
        "instructions" (per element), and "time@BASELINE" or
        "instructions@BASELINE" for a baseline saved with criterion's
        `--save-baseline BASELINE` (the current run is "new").
    ratio_of: what "ratio" divides, "time" or "instructions".
    ratio_of_rates: the ratio divides rates, not times: the baseline's time
        by the row's (the share of the baseline's rate a row reaches, as
        frames received of frames sent).
    ratio_digits: decimals of the ratio.
    unit: what one throughput element is ("packet", "frame", "round trip").
    per: elements per iteration, in place of the bench's throughput (1 for
        a bench whose iteration is one call).
    bold: function id printed in bold (tpa's own row).
    """

    groups: list
    functions: list = None
    baseline: str = FASTEST
    labels: dict = field(default_factory=dict)
    columns: tuple = ("name", "time", "ratio")
    unit: str = "packet"
    per: int = None
    bold: str = None
    name_header: str = "benchmark"
    ratio_of: str = "time"
    ratio_digits: int = 2
    baseline_label: str = None
    ratio_of_rates: bool = False


PEER_LABELS = {
    "tpa": "tpa",
    "etherparse": "etherparse {etherparse}",
    "smoltcp": "smoltcp {smoltcp}",
    "pnet": "pnet_packet {pnet_packet}",
    "rpkt": "rpkt {rpkt}",
}

# One entry per table in doc/benchmarks.md: `<!-- table:KEY -->`.
TABLES = {
    # benches/benches/headers.rs
    "headers-parse": Table(
        ["parse_eth_ipv4_tcp_opts"], labels=PEER_LABELS, bold="tpa", name_header="library"
    ),
    "headers-emit": Table(
        ["emit_eth_ipv4_tcp"], labels=PEER_LABELS, bold="tpa", name_header="library"
    ),
    "headers-emit-ipv4": Table(
        ["emit_ipv4"], labels=PEER_LABELS, bold="tpa", name_header="library"
    ),
    # benches/benches/checksum.rs
    "checksum": Table(
        ["checksum/64", "checksum/1460", "checksum/9000", "checksum/65536"],
        functions=["tpa"],
        baseline="tpa",
        labels=PEER_LABELS,
        bold="tpa",
        columns=("group", "name", "time", "gbps", "ratio"),
        name_header="library",
        unit="sum",
        per=1,
    ),
    # benches/benches/pipeline.rs
    "pipeline": Table(
        ["chain/1", "chain/4", "chain/8", "l2fwd/hot", "l2fwd/cold"],
        functions=["pipeline", "hand", "dyn_packet", "dyn_burst", "pipeline+observer", "move"],
        baseline="pipeline",
        columns=("group", "name", "time", "mpps", "ratio"),
        name_header="variant",
    ),
    # benches/benches/pipeline.rs, interleaved rounds timed with the
    # thread's CPU clock: records in target/bench-results/ with groups
    # "interleaved/chain/1" ... "interleaved/l2fwd/cold".
    "pipeline-interleaved": Table(
        [
            "interleaved/chain/1",
            "interleaved/chain/4",
            "interleaved/chain/8",
            "interleaved/l2fwd/hot",
            "interleaved/l2fwd/cold",
        ],
        functions=["pipeline", "hand", "dyn_packet", "dyn_burst", "pipeline+observer", "move"],
        baseline="pipeline",
        columns=("group", "name", "time", "mpps", "ratio"),
        ratio_digits=3,
        name_header="variant",
    ),
    # benches/callgrind.sh: instructions per packet under callgrind, records
    # in target/bench-results/ with groups "instructions/chain/1" ...
    # "instructions/l2fwd/hot".
    "pipeline-instructions": Table(
        [
            "instructions/chain/1",
            "instructions/chain/4",
            "instructions/chain/8",
            "instructions/l2fwd/hot",
        ],
        functions=["pipeline", "hand", "move"],
        baseline="hand",
        baseline_label="`hand`",
        columns=("group", "name", "instructions", "ratio"),
        ratio_of="instructions",
        ratio_digits=3,
        name_header="variant",
    ),
    # benches/benches/dpdk_ring.rs (`--features dpdk`)
    "dpdk-ring": Table(
        ["dpdk_l2fwd", "dpdk_l2fwd_pipeline"],
        functions=["net_ring_hot", "memory_wire_hot", "net_ring_cold", "memory_wire_cold"],
        baseline={
            "net_ring_hot": "memory_wire_hot",
            "memory_wire_hot": "memory_wire_hot",
            "net_ring_cold": "memory_wire_cold",
            "memory_wire_cold": "memory_wire_cold",
        },
        baseline_label="`MemoryWire` at the same temperature",
        columns=("group", "name", "time", "mpps", "ratio"),
        unit="frame",
    ),
    # benches/benches/kernel_ports.rs
    "kernel-ports": Table(
        ["tap", "af_packet"],
        functions=[
            "tx",
            "bridge_loop",
            "tx_qdisc_bypass",
            "tx_sendmmsg",
            "veth_loop",
            "veth_loop_sendmmsg",
            "veth_loop_throughput_rx",
        ],
        columns=("group", "name", "time", "mpps"),
        unit="frame",
    ),
    # the same bench, one run: AF_XDP beside AF_PACKET and TAP (issue 14)
    "kernel-ports-af-xdp": Table(
        ["tap", "af_packet", "af_xdp"],
        functions=["tx", "veth_loop"],
        columns=("group", "name", "time", "mpps"),
        unit="frame",
    ),
    # benches/benches/kernel_rx.rs: receive alone, a sender the receiver
    # does not answer; medians over rounds, records in
    # target/bench-results/kernel-rx.json.
    "kernel-ports-rx": Table(
        ["af_xdp/rx", "af_packet/rx", "tap/rx"],
        functions=["sent", "received"],
        baseline="sent",
        baseline_label="`sent`",
        ratio_of_rates=True,
        columns=("group", "name", "time", "mpps", "ratio"),
        unit="frame",
        per=1,
    ),
    "kernel-rtt": Table(
        ["rtt"],
        functions=["tap", "af_packet_low_latency", "af_packet_throughput"],
        baseline="tap",
        unit="round trip",
        per=1,
    ),
    # benches/benches/responder.rs
    "responder": Table(
        ["responder", "peer"],
        columns=("group", "name", "time", "mpps"),
    ),
    # benches/benches/udp_echo.rs
    "udp-echo": Table(
        ["udp_echo"],
        functions=["pipeline", "hand", "minimal"],
        baseline="hand",
        baseline_label="`hand`",
        columns=("name", "time", "mpps", "ratio"),
        unit="datagram",
    ),
    # benches/callgrind_udp_echo.sh: records in target/bench-results/ with
    # group "instructions/udp_echo".
    "udp-echo-instructions": Table(
        ["instructions/udp_echo"],
        functions=["pipeline", "hand", "minimal"],
        baseline="hand",
        baseline_label="`hand`",
        columns=("name", "instructions", "ratio"),
        ratio_of="instructions",
        ratio_digits=2,
        unit="datagram",
    ),
    # benches/benches/tcp_memory.rs: TCP between two stacks over an
    # in-memory wire; ratios to smoltcp (the goal: at most 0.5).
    "tcp-memory-bulk": Table(
        ["tcp_memory/bulk"],
        functions=["tpa", "smoltcp"],
        baseline="smoltcp",
        baseline_label="smoltcp",
        labels=PEER_LABELS,
        bold="tpa",
        columns=("name", "time", "gbps", "ratio"),
        unit="MiB",
        name_header="stack",
    ),
    "tcp-memory-rr": Table(
        ["tcp_memory/rr", "tcp_memory/crr"],
        functions=["tpa", "smoltcp"],
        baseline="smoltcp",
        baseline_label="smoltcp",
        labels=PEER_LABELS,
        bold="tpa",
        columns=("group", "name", "time", "ratio"),
        unit="transaction",
        per=1,
        name_header="stack",
    ),
    # benches/callgrind_tcp_memory.sh: records in target/bench-results/ with
    # groups "instructions/tcp_memory/{bulk,rr,crr}".
    "tcp-memory-bulk-instructions": Table(
        ["instructions/tcp_memory/bulk"],
        functions=["tpa", "smoltcp"],
        baseline="smoltcp",
        baseline_label="smoltcp",
        labels=PEER_LABELS,
        bold="tpa",
        columns=("name", "instructions", "ratio"),
        ratio_of="instructions",
        unit="byte",
        name_header="stack",
    ),
    "tcp-memory-rr-instructions": Table(
        ["instructions/tcp_memory/rr", "instructions/tcp_memory/crr"],
        functions=["tpa", "smoltcp"],
        baseline="smoltcp",
        baseline_label="smoltcp",
        labels=PEER_LABELS,
        bold="tpa",
        columns=("group", "name", "instructions", "ratio"),
        ratio_of="instructions",
        unit="transaction",
        per=1,
        name_header="stack",
    ),
    # benches/benches/offload.rs
    "offload-checksums": Table(["offload/software_checksums_1500B"], columns=("name", "time")),
    "offload-tso": Table(
        ["offload/software_tso"], columns=("name", "time", "gbps"), unit="64 000-byte send"
    ),
    # benches/benches/sharebuf.rs
    "sharebuf-hold": Table(
        ["sharebuf/hold_1460B"],
        functions=["clone_drop_shared", "copy_drop", "alloc_drop_unshared"],
        baseline="clone_drop_shared",
        unit="hold",
        per=1,
    ),
    "sharebuf-send": Table(
        ["sharebuf/send_1502B_memory_wire"],
        functions=["flat_frame", "header_chained_to_held_payload"],
        baseline="flat_frame",
        columns=("name", "time", "mpps", "ratio"),
    ),
    # benches/benches/neighbors.rs
    "neighbors": Table(
        ["neighbors/16", "neighbors/1024", "neighbors/65536"],
        functions=["cache", "linear"],
        baseline="cache",
        columns=("group", "name", "time", "ratio"),
        unit="lookup",
        per=1,
    ),
    # benches/callgrind_neighbors.sh
    "neighbors-instructions": Table(
        ["instructions/neighbors/16", "instructions/neighbors/1024", "instructions/neighbors/65536"],
        functions=["cache", "linear"],
        baseline="cache",
        baseline_label="`cache`",
        columns=("group", "name", "instructions", "ratio"),
        ratio_of="instructions",
        unit="lookup",
        per=1,
    ),
    # benches/echo_veth.sh: tpa-echo (AF_PACKET) against the kernel's UDP
    # echo on one veth, the same kernel client; medians over rounds, records
    # in target/bench-results/echo-veth.json.
    "echo-veth-rate": Table(
        ["echo_veth/window_1", "echo_veth/window_32"],
        functions=["tpa", "tpa_backoff", "tpa_xdp", "kernel"],
        baseline="kernel",
        columns=("group", "name", "time", "mpps", "ratio"),
        unit="datagram",
        per=1,
        name_header="echo server",
    ),
    "echo-veth-rtt": Table(
        [
            "echo_rtt/p50/window_1",
            "echo_rtt/p99/window_1",
            "echo_rtt/p50/window_32",
            "echo_rtt/p99/window_32",
        ],
        functions=["tpa", "tpa_backoff", "tpa_xdp", "kernel"],
        baseline="kernel",
        columns=("group", "name", "time", "ratio"),
        unit="round trip",
        per=1,
        name_header="echo server",
    ),
    # benches/benches/time.rs
    "time-clock": Table(["clock"], unit="call", per=1),
    "time-wheel": Table(["wheel"], columns=("name", "time"), unit="operation", per=1),
}


@dataclass
class Measurement:
    ns_per_iter: float  # None for an instruction count alone
    elements: int  # per iteration; None if the bench set no throughput
    bytes: int  # per iteration, for Throughput::Bytes
    samples: int
    mtime: float  # when the estimate was written (seconds since the epoch)
    source: str = "criterion"
    instructions_per_iter: float = None


def target_dir():
    env = os.environ.get("CARGO_TARGET_DIR")
    return Path(env) if env else ROOT / "target"


def load_criterion(criterion_dir):
    """(group, function, baseline) -> Measurement, from criterion's files."""
    data = {}
    if not criterion_dir.is_dir():
        return data
    for bench_json in criterion_dir.glob("**/benchmark.json"):
        run_dir = bench_json.parent
        if run_dir.name == "report" or not (run_dir / "estimates.json").is_file():
            continue
        try:
            meta = json.loads(bench_json.read_text())
            est = json.loads((run_dir / "estimates.json").read_text())
        except (OSError, ValueError) as e:
            print(f"warning: skipping {run_dir}: {e}", file=sys.stderr)
            continue
        throughput = meta.get("throughput") or {}
        samples = None
        sample_file = run_dir / "sample.json"
        if sample_file.is_file():
            try:
                samples = len(json.loads(sample_file.read_text()).get("times", []))
            except ValueError:
                pass
        key = (meta["group_id"], meta.get("function_id") or "", run_dir.name)
        data[key] = Measurement(
            ns_per_iter=float(est["median"]["point_estimate"]),
            elements=throughput.get("Elements") or throughput.get("ElementsAndBytes", {}).get("elements"),
            bytes=throughput.get("Bytes") or throughput.get("BytesDecimal"),
            samples=samples,
            mtime=(run_dir / "estimates.json").stat().st_mtime,
        )
    return data


def load_extra(results_dir):
    """Records a bench wrote to target/bench-results/*.json."""
    data = {}
    if not results_dir.is_dir():
        return data
    for path in sorted(results_dir.glob("*.json")):
        try:
            records = json.loads(path.read_text())
            mtime = path.stat().st_mtime
            for r in records:
                key = (r["group"], r["function"], r.get("baseline", "new"))
                ns = r.get("ns_per_iter")
                ins = r.get("instructions_per_iter")
                if ns is None and ins is None:
                    raise KeyError("ns_per_iter or instructions_per_iter")
                data[key] = Measurement(
                    ns_per_iter=None if ns is None else float(ns),
                    elements=r.get("elements"),
                    bytes=r.get("bytes"),
                    samples=r.get("samples"),
                    mtime=mtime,
                    source=f"target/bench-results/{path.name}",
                    instructions_per_iter=None if ins is None else float(ins),
                )
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"warning: skipping {path}: {e}", file=sys.stderr)
    return data


def crate_versions():
    """Crate name -> highest version in Cargo.lock."""
    versions = {}
    lock = ROOT / "Cargo.lock"
    if not lock.is_file():
        return versions
    for name, version in re.findall(
        r'^name = "([^"]+)"\nversion = "([^"]+)"', lock.read_text(), re.M
    ):
        key = tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version))
        if name not in versions or key > versions[name][0]:
            versions[name] = (key, version)
    return {n: v for n, (_, v) in versions.items()}


def short_version(v):
    """0.21.0 -> 0.21; 1.2.3 -> 1.2 (what a reader recognizes)."""
    return ".".join(v.split(".")[:2])


def fmt_time(ns):
    """ns with three significant digits, in ns, µs or ms."""
    for scale, unit in ((1e6, "ms"), (1e3, "µs"), (1.0, "ns")):
        if ns >= scale or unit == "ns":
            v = ns / scale
            digits = max(0, 2 - int(math.floor(math.log10(v)))) if v > 0 else 1
            return f"{v:.{min(digits, 2)}f} {unit}"
    raise AssertionError


def fmt_sig(v, digits=3):
    if v <= 0:
        return "0"
    d = max(0, digits - 1 - int(math.floor(math.log10(v))))
    return f"{v:.{d}f}"


class Report:
    """Tables from measurements keyed (group, function, baseline).

    `runs` names the criterion baselines to combine: ["new"] (criterion's
    latest run) by default, or several runs saved with `--save-baseline`.
    A row's time is then the median of its per-run medians, and its ratio
    the median of its same-run ratios (each run's ratio divides by the
    baseline row of the same run).
    """

    def __init__(self, data, versions, runs=("new",)):
        self.data = data
        self.versions = versions
        self.runs = list(runs)

    def runs_of(self, g, f):
        """[Measurement] of one benchmark, one per run that has it."""
        return [self.data[(g, f, b)] for b in self.runs if (g, f, b) in self.data]

    def per_elem(self, t, m, what="time"):
        """Time (ns) or instructions per element; None if not measured."""
        v = m.ns_per_iter if what == "time" else m.instructions_per_iter
        return None if v is None else v / (t.per or m.elements or 1)

    def value(self, t, g, f, what="time"):
        """Median over the runs of the per-element time or instructions."""
        vs = [self.per_elem(t, m, what) for m in self.runs_of(g, f)]
        vs = [v for v in vs if v is not None]
        return statistics.median(vs) if vs else None

    def found(self, t, g):
        """The functions of group `g` that ran, in no order."""
        return {f for (gg, f, b) in self.data if gg == g and b in self.runs}

    def functions_of(self, t, g):
        """The functions of group `g` in display order: those the table
        lists, in its order, then any others by ratio (or time)."""
        found = self.found(t, g)
        listed = [f for f in (t.functions or []) if f in found]
        rank = self.ratio if "ratio" in t.columns else self.value
        rest = sorted(found - set(listed), key=lambda f: (rank(t, g, f) or 0, f))
        return listed + rest

    def ratio(self, t, g, f):
        """Median over the runs of the row's value / the same run's baseline."""
        ratios = []
        for b in self.runs:
            m = self.data.get((g, f, b))
            v = m and self.per_elem(t, m, t.ratio_of)
            if not v:
                continue
            if t.baseline == FASTEST:
                peers = [self.data.get((g, o, b)) for o in self.found(t, g)]
                peers = [self.per_elem(t, p, t.ratio_of) for p in peers if p]
                base = min((x for x in peers if x), default=None)
            else:
                name = t.baseline.get(f) if isinstance(t.baseline, dict) else t.baseline
                bm = self.data.get((g, name, b))
                base = bm and self.per_elem(t, bm, t.ratio_of)
            if base:
                ratios.append(base / v if t.ratio_of_rates else v / base)
        return statistics.median(ratios) if ratios else None

    def label(self, t, f):
        text = t.labels.get(f, f"`{f}`")
        return re.sub(
            r"\{([^}]+)\}",
            lambda mt: short_version(self.versions.get(mt.group(1), "?")),
            text,
        )

    def rows_of(self, t):
        """[(group, function, [Measurement])] of a table, in display order."""
        return [(g, f, self.runs_of(g, f)) for g in t.groups for f in self.functions_of(t, g)]

    def render(self, name):
        """The table's markdown, or None when none of its benchmarks ran."""
        t = TABLES[name]
        rows = self.rows_of(t)
        if not rows:
            return None
        every = [m for _, _, ms in rows for m in ms]
        measured_per = t.per or any(m.elements or m.bytes for m in every)
        per = t.unit if measured_per else "iteration"
        if t.baseline_label:
            base_name = t.baseline_label
        elif t.baseline == FASTEST:
            base_name = "the fastest"
        else:
            base_name = f"`{t.baseline}`"
        headers = []
        align = []
        for c in t.columns:
            column, _, baseline = c.partition("@")
            prefix = f"{baseline}: " if baseline else ""
            if column == "group":
                headers.append("group"), align.append("---")
            elif column == "name":
                headers.append(t.name_header), align.append("---")
            elif column == "time":
                headers.append(f"{prefix}time per {per} (median)"), align.append("---:")
            elif column == "instructions":
                headers.append(f"{prefix}instructions per {per}"), align.append("---:")
            elif column == "mpps":
                headers.append(f"{prefix}Mpps"), align.append("---:")
            elif column == "gbps":
                headers.append("Gbit/s"), align.append("---:")
            elif column == "ratio":
                scope = " in its group" if len(t.groups) > 1 else ""
                what = "time" if t.ratio_of == "time" else "instructions"
                if t.ratio_of_rates:
                    what = "rate"
                headers.append(f"{what} / {base_name}{scope}"), align.append("---:")
            else:
                raise SystemExit(f"table {name}: unknown column {c!r}")
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
        for g, f, ms in rows:
            cells = []
            for c in t.columns:
                column, _, baseline = c.partition("@")
                if baseline:
                    other = self.data.get((g, f, baseline))
                    ns = other and self.per_elem(t, other)
                    ins = other and self.per_elem(t, other, "instructions")
                else:
                    ns = self.value(t, g, f)
                    ins = self.value(t, g, f, "instructions")
                if column == "group":
                    cells.append(f"`{g}`")
                elif column == "name":
                    cells.append(self.label(t, f))
                elif column == "time":
                    cells.append(fmt_time(ns) if ns else "–")
                elif column == "instructions":
                    cells.append(fmt_sig(ins, 4) if ins else "–")
                elif column == "mpps":
                    cells.append(fmt_sig(1e3 / ns) if ns else "–")
                elif column == "gbps":
                    nbytes = ms[0].bytes
                    gbps = nbytes and ns and nbytes * 8 / (ns * (t.per or ms[0].elements or 1))
                    cells.append(fmt_sig(gbps) if gbps else "–")
                elif column == "ratio":
                    r = self.ratio(t, g, f)
                    cells.append(f"{r:.{t.ratio_digits}f}" if r else "–")
            if t.bold is not None and f == t.bold:
                cells = [f"**{c}**" if c not in ("", "–") else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        reading = self.reading(t, rows)
        if reading:
            lines.append(reading)
            lines.append("")
        lines.append(self.caption(t, rows))
        return "\n".join(lines)

    def reading(self, t, rows):
        """One generated sentence for a one-group table ranked by the
        fastest: who is fastest and the range of the others' ratios."""
        if "ratio" not in t.columns or t.baseline != FASTEST or len(t.groups) != 1:
            return None
        ranked = sorted(
            ((g, f, r) for g, f, _ in rows if (r := self.ratio(t, g, f))),
            key=lambda row: row[2],
        )
        if len(ranked) < 2:
            return None
        what = "time" if t.ratio_of == "time" else "instruction count"
        fmt = lambda row: f"{row[2]:.{t.ratio_digits}f}× ({self.label(t, row[1])})"
        others = fmt(ranked[1]) if len(ranked) == 2 else f"{fmt(ranked[1])} to {fmt(ranked[-1])}"
        verb = "takes" if len(ranked) == 2 else "take"
        who = "the other" if len(ranked) == 2 else "the others"
        lead = f"Fastest: {self.label(t, ranked[0][1])}"
        if len(self.runs) > 1:
            lead = f"Fastest by the median ratio: {self.label(t, ranked[0][1])}"
        return f"{lead}; {who} {verb} {others} its {what}."

    def caption(self, t, rows):
        every = [m for _, _, ms in rows for m in ms]
        times = [m.mtime for m in every]
        first, last = min(times), max(times)
        day = lambda s: datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        )
        samples = sorted({m.samples for m in every if m.samples})
        n = f"{samples[0]}" if len(samples) == 1 else "–".join(map(str, samples[:1] + samples[-1:]))
        sources = sorted({m.source for m in every})
        kind = "criterion samples" if sources == ["criterion"] else "samples"
        if len(self.runs) == 1:
            text = f"Generated by `benches/report.py` from the run of {day(last)}"
        else:
            text = (
                f"Generated by `benches/report.py` from {len(self.runs)} runs"
                f" ({', '.join(f'`{b}`' for b in self.runs)}, {day(first)} to {day(last)}):"
                " times are medians of the per-run medians, ratios medians of the"
                " same-run ratios"
            )
        if sources != ["criterion"]:
            text += f" ({', '.join(f'`{x}`' for x in sources)})"
        if samples and len(self.runs) == 1:
            text += f"; medians of {n} {kind}"
        elif samples:
            text += f"; each run's median is over {n} {kind}"
        if len(self.runs) == 1 and last - first > ONE_HOUR:
            text += (
                f". **Mixed runs** ({day(first)} to {day(last)}): the ratios are not"
                " same-run ratios; rerun the bench"
            )
        return f"<sub>{text}.</sub>"


MARKER = re.compile(r"<!-- table:([A-Za-z0-9_.-]+) -->\n(.*?)<!-- /table -->", re.S)


def regenerate(doc_text, report, only=None):
    """(new text, names regenerated, names left as they were)."""
    done, kept = [], []
    seen = set()

    def replace(mt):
        name = mt.group(1)
        seen.add(name)
        if name not in TABLES:
            raise SystemExit(f"{DOC.name}: marker table:{name} has no entry in TABLES")
        if only and name not in only:
            return mt.group(0)
        body = report.render(name)
        if body is None:
            kept.append(name)
            return mt.group(0)
        done.append(name)
        return f"<!-- table:{name} -->\n{body}\n<!-- /table -->"

    text = MARKER.sub(replace, doc_text)
    missing = sorted(set(TABLES) - seen)
    if missing:
        print(f"warning: no marker in the doc for: {', '.join(missing)}", file=sys.stderr)
    return text, done, kept


FIGURE = re.compile(
    r"(?<![\w.`/-])\d[\d,.]*\s?(?:ns|µs|us|ms|Mpps|Gbit/s|×|x\b|%)(?![\w`])"
)


def lint(doc_text):
    """Figures (a number with a unit) in the prose, outside tables and code."""
    problems = []
    in_code = False
    in_table = False
    for no, line in enumerate(doc_text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if line.startswith("<!-- table:"):
            in_table = True
        elif line.startswith("<!-- /table -->"):
            in_table = False
            continue
        if in_code or in_table:
            continue
        prose = re.sub(r"`[^`]*`", "", line)
        for mt in FIGURE.finditer(prose):
            problems.append((no, mt.group(0), line.strip()))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--target", type=Path, default=None, help="cargo target dir")
    ap.add_argument("--only", nargs="*", help="regenerate only these tables")
    ap.add_argument("--list", action="store_true", help="show tables and their data")
    ap.add_argument(
        "--lint",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="check the prose of the doc (or of FILEs) for figures outside tables",
    )
    ap.add_argument("--print", dest="print_", metavar="TABLE", help="print one table")
    ap.add_argument(
        "--runs",
        nargs="+",
        default=["new"],
        metavar="BASELINE",
        help="combine these runs, saved with criterion's --save-baseline "
        "(default: new, the latest run)",
    )
    args = ap.parse_args()

    doc_text = args.doc.read_text()
    if args.lint is not None:
        problems = []
        for path in args.lint or [args.doc]:
            for no, fig, line in lint(path.read_text()):
                problems.append(no)
                print(f"{path}:{no}: figure {fig!r} outside a generated table: {line}")
        if problems:
            print(
                f"{len(problems)} figure(s) in the prose: quote the table instead",
                file=sys.stderr,
            )
        return 1 if problems else 0

    target = args.target or target_dir()
    data = load_criterion(target / "criterion")
    data.update(load_extra(target / "bench-results"))
    report = Report(data, crate_versions(), args.runs)

    if args.list:
        for name, t in TABLES.items():
            rows = report.rows_of(t)
            if rows:
                last = max(m.mtime for _, _, ms in rows for m in ms)
                when = datetime.datetime.fromtimestamp(last, datetime.timezone.utc)
                saved = sorted({b for (g, _, b) in data if g in t.groups})
                print(
                    f"{name:20} {len(rows):3} rows, latest {when:%Y-%m-%d %H:%M} UTC;"
                    f" runs: {' '.join(saved)}"
                )
            else:
                print(f"{name:20}   no data ({', '.join(t.groups)})")
        return 0
    if args.print_:
        if args.print_ not in TABLES:
            raise SystemExit(f"no table {args.print_!r}; see --list")
        print(report.render(args.print_) or "no data")
        return 0

    new_text, done, kept = regenerate(doc_text, report, set(args.only) if args.only else None)
    if new_text != doc_text:
        args.doc.write_text(new_text)
    print(f"regenerated: {', '.join(done) or 'none'}")
    if kept:
        print(f"no data, left as they were: {', '.join(kept)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
