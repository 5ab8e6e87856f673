#!/usr/bin/env python
"""Ingest benchmark (not a test): the same 300-slice 512x512 CT sent by dcmtk ``storescu`` to
(a) our gateway (durable: fsync + database row before success), 1 and 4 parallel associations,
(b) Orthanc (Debian package, default durable storage, own temp config on loopback), 1 and 4 associations,
(c) dcmtk ``storescp`` (writes files, no fsync), 1 association.

Every peer runs with TCP_NODELAY=1 (Debian's dcmtk and Orthanc otherwise leave Nagle on). Each
send invents new study/series/instance UIDs (``storescu +IS``) so that no run is a duplicate.
Peers run round-robin (run 1 of each, then run 2 of each...) so that the shared machine's changing
load weighs on all alike, with the page cache flushed (sync) before each run. Prints per-run timings, images/s medians and the ratios, then ONE summary
line of name=value pairs.

The machine is shared, so throughput is noisy; every run also reports the CPU time each peer's
processes spent per image (utime + stime from /proc, all threads; the gateway's parent and child
processes, each child's share shown, so an idle child on several associations is visible). The
gateway's figure leaves out the PostgreSQL backend serving it; Orthanc's includes its SQLite index.

With ``--baseline GIT_REF`` the gateway of an earlier commit (a ``git archive`` copy run with this venv, its own
scratch database) is measured in the same rounds: a change of the gateway is judged side by side.

Usage: DATABASE_URL=postgres://... .venv/bin/python benchmarks/ingest.py [--runs 3] [--slices 300] [--baseline REF]
(``make bench`` sets DATABASE_URL; the gateway's tables are created with ``migrate`` + ``load_demo``.)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_nodelay(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    env.update(extra)
    return env


def wait_echo(port: int, aec: str, aet: str = "VIERZON_CT", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["echoscu", "-aet", aet, "-aec", aec, "127.0.0.1", str(port)], env=env_nodelay(),
                           capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"{aec} on port {port} did not answer C-ECHO")


def send(files: list[Path], port: int, aec: str, parallel: int) -> float:
    """Wall time to send ``files`` over ``parallel`` concurrent associations (each its own storescu)."""
    groups = [files[i::parallel] for i in range(parallel)]
    cmds = [["storescu", "-aet", "VIERZON_CT", "-aec", aec, "-pdu", "131072", "+IS", "1000000",
             "127.0.0.1", str(port), *map(str, g)] for g in groups]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env_nodelay(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in cmds]
    outs = [p.communicate()[0] for p in procs]
    dt = time.perf_counter() - t0
    for p, out in zip(procs, outs, strict=True):
        if p.returncode != 0 or b"E:" in out or b"F:" in out:
            raise RuntimeError(f"storescu failed ({p.returncode}): {out.decode(errors='replace')[-2000:]}")
    return dt


def _cpu_ticks(pid: int) -> tuple[int, int]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    return int(fields[11]), int(fields[12])  # utime, stime (fields 14 and 15)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ValueError):
            pass
    return found


TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Peer:
    name: str
    key: str
    port: int
    aec: str
    parallel: int
    pid: int = 0  # its main process (0: not measured)
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # CPU per image, all its processes

    def cpu_sample(self) -> dict[int, tuple[int, int]]:
        if not self.pid:
            return {}
        return {p: _cpu_ticks(p) for p in (self.pid, *_children(self.pid))}


def measure_interleaved(peers: list[Peer], files: list[Path], runs: int) -> None:
    """Round-robin: run 1 of every peer, then run 2 of every peer... so that a change in the machine's
    load (it is shared) weighs on every peer alike instead of on whoever happened to run then."""
    for i in range(runs):
        for peer in peers:
            # Flush what the previous peer left in the page cache (Orthanc and storescp do not fsync):
            # otherwise its write-back lands on the timing of whoever runs next.
            os.sync()
            before = peer.cpu_sample()
            dt = send(files, peer.port, peer.aec, peer.parallel)
            after = peer.cpu_sample()
            peer.rates.append(len(files) / dt)
            cpu = ""
            if after:
                ms = 1000 / TICK / len(files)
                per = {p: (sum(after[p]) - sum(before.get(p, (0, 0)))) * ms for p in after}
                system = sum(after[p][1] - before.get(p, (0, 0))[1] for p in after) * ms
                peer.cpu_ms.append(sum(per.values()))
                split = "+".join(f"{per[p]:.2f}" for p in after)
                cpu = f"  cpu {peer.cpu_ms[-1]:5.2f} ms/image ({split}; system {system:.2f})"
            print(f"  run {i + 1}  {peer.name:<32} {dt:6.2f} s  {len(files) / dt:7.1f} images/s{cpu}", flush=True)
    for peer in peers:
        cpu = f", cpu median {statistics.median(peer.cpu_ms):.2f} ms/image" if peer.cpu_ms else ""
        print(f"{peer.name:<32} median {statistics.median(peer.rates):7.1f} images/s{cpu}", flush=True)


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int


def start_gateway(root: Path, work: Path, database_url: str) -> Gateway:
    """The gateway of the checkout ``root`` with production settings (no debug query log), its tables created
    with ``migrate`` + ``load_demo`` in ``database_url``. Its receivers run at the niceness of the other peers
    (``PDS_DICOM_NICE=0``): production lowers them so that routing goes first on a busy night, which says
    nothing of ingest speed and would only hand the CPU to whatever else runs on the machine."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    env = env_nodelay(PDS_DICOM_PORT=str(port), PDS_DICOM_STORAGE_ROOT=str(work / "storage"),
                      PDS_VAR_DIR=str(work / "var"), PDS_DICOM_QUIET_SECONDS="3600", PDS_DICOM_MIN_FREE_MB="100",
                      PYTHONUNBUFFERED="1", DATABASE_URL=database_url, DJANGO_DEBUG="0",
                      DJANGO_SECRET_KEY=secrets.token_urlsafe(64), PDS_AUDIT_KEY=secrets.token_urlsafe(48),
                      DJANGO_ALLOWED_HOSTS="localhost", PDS_DICOM_NICE="0")
    for step in (["migrate", "--noinput", "-v0"], ["load_demo"]):
        subprocess.run([PY, "manage.py", *step], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([PY, "manage.py", "run_gateway", "--no-reconcile"], cwd=root, env=env,
                            stdout=open(work / "gateway.log", "wb"), stderr=subprocess.STDOUT)
    wait_echo(port, "PDS_GATEWAY")
    return Gateway(proc, port)


def checkout(ref: str, where: Path) -> Path:
    """A plain copy of the tree of ``ref`` (``git archive``): the baseline runs from it with this venv."""
    where.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--baseline", default="", metavar="GIT_REF",
                        help="also measure the gateway of this commit (its own checkout and database), side by side")
    parser.add_argument("--only", default="", help="comma-separated peer keys to run (e.g. gateway_1assoc), "
                        "default all")
    args = parser.parse_args()

    from tests.factories.dicom import SeriesSpec, write_study

    work = Path(tempfile.mkdtemp(prefix="pds-bench-ingest-"))
    try:
        t0 = time.perf_counter()
        _, files = write_study(work / "study", [SeriesSpec(1, args.slices)], rows=args.size, cols=args.size)
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"Generated {len(files)} slices {args.size}x{args.size} ({mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        procs: list[subprocess.Popen[bytes]] = []
        peers: list[Peer] = []
        try:
            # (a) our gateway, against DATABASE_URL (PostgreSQL under `make bench`); with --baseline, the gateway
            # of an earlier commit too, from its own checkout and database, measured in the same rounds.
            gateways = [("gateway", "gateway", ROOT, os.environ.get("DATABASE_URL", ""))]
            if args.baseline:
                from benchmarks._common import create_database

                base_root = checkout(args.baseline, work / "baseline")
                gateways.append((f"baseline {args.baseline}", "baseline", base_root,
                                 create_database(os.environ["DATABASE_URL"], "bench_baseline")))
            for label, key, root, db_url in gateways:
                gw = start_gateway(root, work / key, db_url)
                procs.append(gw.proc)
                peers += [Peer(f"{label}, 1 association", f"{key}_1assoc", gw.port, "PDS_GATEWAY", 1, gw.proc.pid),
                          Peer(f"{label}, 4 associations", f"{key}_4assoc", gw.port, "PDS_GATEWAY", 4, gw.proc.pid)]

            # (b) Orthanc with its defaults (SQLite index, files on disk), own config and storage.
            if not args.skip_orthanc and shutil.which("Orthanc"):
                o_dicom, o_http = free_port(), free_port()
                cfg = {"Name": "bench", "StorageDirectory": str(work / "orthanc" / "storage"),
                       "IndexDirectory": str(work / "orthanc" / "index"), "DicomAet": "ORTHANC",
                       "DicomPort": o_dicom, "HttpPort": o_http, "RemoteAccessAllowed": False,
                       "AuthenticationEnabled": False, "DicomCheckCalledAet": False, "Plugins": []}
                (work / "orthanc").mkdir()
                (work / "orthanc" / "orthanc.json").write_text(json.dumps(cfg))
                orthanc = subprocess.Popen(["Orthanc", str(work / "orthanc" / "orthanc.json")], env=env_nodelay(),
                                           stdout=open(work / "orthanc.log", "wb"), stderr=subprocess.STDOUT)
                procs.append(orthanc)
                wait_echo(o_dicom, "ORTHANC")
                peers += [Peer("Orthanc, 1 association", "orthanc_1assoc", o_dicom, "ORTHANC", 1, orthanc.pid),
                          Peer("Orthanc, 4 associations", "orthanc_4assoc", o_dicom, "ORTHANC", 4, orthanc.pid)]

            # (c) dcmtk storescp (no fsync).
            s_port = free_port()
            (work / "storescp").mkdir()
            procs.append(subprocess.Popen(["storescp", "-od", str(work / "storescp"), "-pdu", "131072", str(s_port)],
                                          env=env_nodelay(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_echo(s_port, "STORESCP")
            peers.append(Peer("dcmtk storescp, 1 association", "storescp_1assoc", s_port, "STORESCP", 1))

            if args.only:
                peers = [p for p in peers if p.key in args.only.split(",")]
            measure_interleaved(peers, files, args.runs)
        finally:
            for proc in procs:
                stop(proc)
        results = {f"{p.key}_img_per_s": statistics.median(p.rates) for p in peers}
        results.update({f"{p.key}_cpu_ms_per_image": statistics.median(p.cpu_ms) for p in peers if p.cpu_ms})
        by_key = {p.key: p.rates for p in peers}

        def ratio(name: str, ours: str, theirs: str) -> None:
            if ours in by_key and theirs in by_key:
                results[name] = statistics.median(by_key[ours]) / statistics.median(by_key[theirs])
                # The same ratio taken round by round (the two ran a few seconds apart), then the median:
                # steadier than the ratio of medians when the shared machine's speed drifts during the run.
                results[f"{name}_paired_median"] = statistics.median(
                    g / o for g, o in zip(by_key[ours], by_key[theirs], strict=True))

        ratio("ingest_ratio_vs_orthanc", "gateway_1assoc", "orthanc_1assoc")
        ratio("ingest_ratio_4assoc_vs_orthanc_4assoc", "gateway_4assoc", "orthanc_4assoc")
        ratio("gateway_4assoc_vs_1assoc_ratio", "gateway_4assoc", "gateway_1assoc")
        ratio("ingest_ratio_vs_storescp", "gateway_1assoc", "storescp_1assoc")
        ratio("ingest_ratio_vs_baseline", "gateway_1assoc", "baseline_1assoc")
        ratio("ingest_ratio_4assoc_vs_baseline_4assoc", "gateway_4assoc", "baseline_4assoc")
        ratio("baseline_ratio_vs_orthanc", "baseline_1assoc", "orthanc_1assoc")
        ratio("baseline_ratio_4assoc_vs_orthanc_4assoc", "baseline_4assoc", "orthanc_4assoc")
        print()
        print(" ".join(f"{k}={v:.2f}" for k, v in results.items()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
