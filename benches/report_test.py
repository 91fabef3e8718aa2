#!/usr/bin/env python3
"""Tests of benches/report.py on criterion output written here, not measured.

    python3 benches/report_test.py
"""

import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402


def write_run(criterion, group, function, median_ns, elements=None, samples=30, baseline="new"):
    """One benchmark's files as criterion writes them."""
    run = criterion / group.replace("/", "_") / function / baseline
    run.mkdir(parents=True, exist_ok=True)
    throughput = {"Elements": elements} if elements else None
    (run / "benchmark.json").write_text(
        json.dumps(
            {
                "group_id": group,
                "function_id": function,
                "value_str": None,
                "throughput": throughput,
                "full_id": f"{group}/{function}",
                "directory_name": f"{group}/{function}",
                "title": f"{group}/{function}",
            }
        )
    )
    estimate = {"confidence_interval": {}, "point_estimate": median_ns, "standard_error": 1.0}
    (run / "estimates.json").write_text(
        json.dumps({"mean": dict(estimate, point_estimate=median_ns * 1.1), "median": estimate})
    )
    (run / "sample.json").write_text(
        json.dumps({"sampling_mode": "Linear", "iters": [1.0] * samples, "times": [1.0] * samples})
    )
    return run


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.criterion = self.dir / "criterion"
        self.saved = dict(report.TABLES)
        report.TABLES.clear()
        report.TABLES["emit"] = report.Table(
            ["emit"], labels={"tpa": "tpa", "peer": "peer {peer}"}, bold="tpa", name_header="library"
        )
        report.TABLES["chain"] = report.Table(
            ["chain/1", "chain/8"],
            functions=["pipeline", "hand"],
            baseline="pipeline",
            columns=("group", "name", "time", "mpps", "ratio"),
        )
        report.TABLES["idle"] = report.Table(["never_run"])

    def tearDown(self):
        report.TABLES.clear()
        report.TABLES.update(self.saved)
        self.tmp.cleanup()

    def report(self):
        data = report.load_criterion(self.criterion)
        data.update(report.load_extra(self.dir / "bench-results"))
        return report.Report(data, {"peer": "0.21.3"})

    def test_medians_per_packet_and_ratios_come_from_the_same_files(self):
        write_run(self.criterion, "emit", "tpa", 640.0, elements=64)
        write_run(self.criterion, "emit", "peer", 1600.0, elements=64)
        text = self.report().render("emit")
        lines = text.splitlines()
        self.assertEqual(lines[0], "| library | time per packet (median) | time / the fastest |")
        self.assertEqual(lines[2], "| **tpa** | **10.0 ns** | **1.00** |")
        self.assertEqual(lines[3], "| peer 0.21 | 25.0 ns | 2.50 |")
        self.assertIn("Fastest: tpa; the other takes 2.50× (peer 0.21) its time.", text)
        self.assertIn("medians of 30 criterion samples", text)
        self.assertNotIn("Mixed runs", text)

    def test_ratios_are_to_the_baseline_of_the_same_group(self):
        write_run(self.criterion, "chain/1", "pipeline", 100.0, elements=32)
        write_run(self.criterion, "chain/1", "hand", 50.0, elements=32)
        write_run(self.criterion, "chain/8", "pipeline", 320.0, elements=32)
        write_run(self.criterion, "chain/8", "hand", 352.0, elements=32)
        rows = self.report().render("chain").splitlines()[2:6]
        self.assertEqual(
            rows,
            [
                "| `chain/1` | `pipeline` | 3.12 ns | 320 | 1.00 |",
                "| `chain/1` | `hand` | 1.56 ns | 640 | 0.50 |",
                "| `chain/8` | `pipeline` | 10.0 ns | 100 | 1.00 |",
                "| `chain/8` | `hand` | 11.0 ns | 90.9 | 1.10 |",
            ],
        )

    def test_several_runs_give_median_times_and_median_same_run_ratios(self):
        for run, tpa, peer in [("r1", 10.0, 30.0), ("r2", 20.0, 20.0), ("r3", 30.0, 90.0)]:
            write_run(self.criterion, "emit", "tpa", 64 * tpa, elements=64, baseline=run)
            write_run(self.criterion, "emit", "peer", 64 * peer, elements=64, baseline=run)
        write_run(self.criterion, "emit", "peer", 64 * 1000.0, elements=64)  # not asked for
        data = report.load_criterion(self.criterion)
        text = report.Report(data, {"peer": "0.21.3"}, runs=["r1", "r2", "r3"]).render("emit")
        lines = text.splitlines()
        # Times: medians of the runs' medians (20 and 30 ns); the ratio is the
        # median of the same-run ratios (3, 1, 3), not 30 / 20.
        self.assertEqual(lines[2], "| **tpa** | **20.0 ns** | **1.00** |")
        self.assertEqual(lines[3], "| peer 0.21 | 30.0 ns | 3.00 |")
        self.assertIn("from 3 runs (`r1`, `r2`, `r3`", text)
        self.assertIn("Fastest by the median ratio: tpa", text)

    def test_each_row_can_have_its_own_baseline(self):
        report.TABLES["temps"] = report.Table(
            ["l2fwd"],
            functions=["ring_hot", "wire_hot", "ring_cold", "wire_cold"],
            baseline={
                "ring_hot": "wire_hot",
                "wire_hot": "wire_hot",
                "ring_cold": "wire_cold",
                "wire_cold": "wire_cold",
            },
            baseline_label="the wire at the same temperature",
        )
        for f, ns in [("ring_hot", 30.0), ("wire_hot", 20.0), ("ring_cold", 300.0), ("wire_cold", 100.0)]:
            write_run(self.criterion, "l2fwd", f, 32 * ns, elements=32)
        lines = self.report().render("temps").splitlines()
        self.assertEqual(lines[0], "| benchmark | time per packet (median) | time / the wire at the same temperature |")
        self.assertEqual(
            [line.rsplit("|", 2)[1].strip() for line in lines[2:6]], ["1.50", "1.00", "3.00", "1.00"]
        )

    def test_a_ratio_of_rates_is_the_share_of_the_baselines_rate(self):
        report.TABLES["rx"] = report.Table(
            ["af_xdp/rx"],
            functions=["sent", "received"],
            baseline="sent",
            baseline_label="`sent`",
            ratio_of_rates=True,
            columns=("name", "mpps", "ratio"),
            per=1,
        )
        write_run(self.criterion, "af_xdp/rx", "sent", 2.0)
        write_run(self.criterion, "af_xdp/rx", "received", 2.5)
        lines = self.report().render("rx").splitlines()
        self.assertEqual(lines[0], "| benchmark | Mpps | rate / `sent` |")
        self.assertEqual(lines[2:4], ["| `sent` | 500 | 1.00 |", "| `received` | 400 | 0.80 |"])

    def test_runs_an_hour_apart_are_flagged(self):
        write_run(self.criterion, "emit", "tpa", 640.0, elements=64)
        old = write_run(self.criterion, "emit", "peer", 1600.0, elements=64)
        t = (old / "estimates.json").stat().st_mtime - 2 * 3600
        os.utime(old / "estimates.json", (t, t))
        self.assertIn("**Mixed runs**", self.report().render("emit"))

    def test_the_doc_is_rewritten_only_between_markers_with_data(self):
        write_run(self.criterion, "emit", "tpa", 640.0, elements=64)
        doc = (
            "Intro.\n\n<!-- table:emit -->\nold table\n<!-- /table -->\n\n"
            "<!-- table:idle -->\nplaceholder\n<!-- /table -->\nEnd.\n"
        )
        text, done, kept = report.regenerate(doc, self.report())
        self.assertEqual((done, kept), (["emit"], ["idle"]))
        self.assertTrue(text.startswith("Intro.\n\n<!-- table:emit -->\n| library |"))
        self.assertNotIn("old table", text)
        self.assertIn("<!-- table:idle -->\nplaceholder\n<!-- /table -->\nEnd.\n", text)
        again, _, _ = report.regenerate(text, self.report())
        self.assertEqual(again, text, "regenerating twice changes nothing")

    def test_a_marker_without_an_entry_is_an_error(self):
        with self.assertRaises(SystemExit):
            report.regenerate("<!-- table:nope -->\n<!-- /table -->\n", self.report())

    def test_records_from_other_tools_feed_the_same_tables(self):
        results = self.dir / "bench-results"
        results.mkdir()
        (results / "interleaved.json").write_text(
            json.dumps(
                [
                    {"group": "chain/1", "function": "pipeline", "ns_per_iter": 64.0, "elements": 32},
                    {"group": "chain/1", "function": "hand", "ns_per_iter": 96.0, "elements": 32},
                ]
            )
        )
        text = self.report().render("chain")
        self.assertIn("| `chain/1` | `hand` | 3.00 ns | 333 | 1.50 |", text)
        self.assertIn("`target/bench-results/interleaved.json`", text)

    def test_lint_finds_figures_in_prose_but_not_in_tables_or_code(self):
        doc = (
            "The emit takes 12.9 ns, 2.09× smoltcp.\n"
            "Run `--measurement-time 3` for 3 ms.\n"
            "```\n5 ns in code\n```\n"
            "<!-- table:emit -->\n| tpa | 20.8 ns |\n<!-- /table -->\n"
        )
        found = [fig for _, fig, _ in report.lint(doc)]
        self.assertEqual(found, ["12.9 ns", "2.09×", "3 ms"])


if __name__ == "__main__":
    unittest.main()
