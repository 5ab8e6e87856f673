#!/usr/bin/env python
"""Side-by-side benchmark (not a test): this checkout against an earlier commit, in one run, so that a change
(a refactoring that must not cost speed, a speed-up that must show) is judged on the same machine at the same
moment rather than against figures from another day.

- Routing: ``benchmarks/routing.py`` of each side, alternately (``--rounds`` rounds: baseline, current, baseline,
  current...), each in its own process with its own code; the median of each figure per side.
- Ingest: ``benchmarks/ingest.py --baseline REF``: both gateways and Orthanc in the same interleaved rounds.

The baseline is a ``git archive`` copy of ``--baseline`` run with this venv (its dependencies must be a subset
of this one's). Prints each side's figures and ends with ONE summary line of name=value pairs, among them
``routing_decision_p99_ratio_vs_baseline`` (under 1: faster now) and the ingest ratios vs the baseline.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x CELERY_BROKER_URL=redis://127.0.0.1:6379/2 \
       .venv/bin/python benchmarks/compare.py --baseline 59329bb [--rounds 3] [--ingest-runs 7] [--studies 300]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from benchmarks.ingest import checkout  # noqa: E402

ROUTING_KEYS = ("routing_decision_median_ms", "routing_decision_p99_ms", "complete_to_assigned_median_ms",
                "complete_to_assigned_p99_ms")


def summary(output: str) -> dict[str, float]:
    """The name=value pairs of a benchmark's last line."""
    last = [line for line in output.splitlines() if "=" in line][-1]
    figures = {}
    for pair in last.split():
        name, _, value = pair.partition("=")
        try:
            figures[name] = float(value)
        except ValueError:
            pass
    return figures


def run(script: Path, *args: str) -> dict[str, float]:
    out = subprocess.run([PY, str(script), *args], cwd=script.parent.parent, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return summary(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, metavar="GIT_REF")
    parser.add_argument("--rounds", type=int, default=3, help="routing runs per side, alternated")
    parser.add_argument("--studies", type=int, default=300, help="studies per routing run")
    parser.add_argument("--ingest-runs", type=int, default=7)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pds-bench-compare-"))
    try:
        base_root = checkout(args.baseline, work / "baseline")
        sides = {"baseline": base_root / "benchmarks" / "routing.py", "current": ROOT / "benchmarks" / "routing.py"}
        figures: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for i in range(args.rounds):
            for side, script in sides.items():
                result = run(script, "--studies", str(args.studies))
                figures[side].append(result)
                shown = "  ".join(f"{k}={result[k]:.2f}" for k in ROUTING_KEYS if k in result)
                print(f"  routing round {i + 1} {side:<9} {shown}", flush=True)
        results: dict[str, float] = {}
        for side in sides:
            for key in ROUTING_KEYS:
                values = [f[key] for f in figures[side] if key in f]
                if values:
                    results[f"{side}_{key}"] = statistics.median(values)
        for key in ("routing_decision_p99_ms", "complete_to_assigned_p99_ms"):
            if f"baseline_{key}" in results and results[f"baseline_{key}"]:
                results[f"{key.removesuffix('_ms')}_ratio_vs_baseline"] = (
                    results[f"current_{key}"] / results[f"baseline_{key}"])
        if not args.skip_ingest:
            ingest = run(ROOT / "benchmarks" / "ingest.py", "--runs", str(args.ingest_runs),
                         "--baseline", args.baseline)
            print("  ingest: " + " ".join(f"{k}={v:.2f}" for k, v in ingest.items()), flush=True)
            results.update({k: v for k, v in ingest.items() if "ratio" in k or k.endswith("img_per_s")})
        print()
        print(" ".join(f"{k}={v:.2f}" for k, v in results.items()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
