"""Benchmarks of the log analysis (run by hand: ``.venv/bin/python benchmarks/logs.py``).

1. Access-log pipeline (parse with the compiled log_format + classify attacks + count), pinned
   to one CPU, over a generated 1-million-line log in the issue's format: real browser
   User-Agents (sqlmap's list), ordinary targets (Debian doc links, API calls; 60 % made
   unique with a varying parameter, so the verdict caches do not see only repeats) and 0.5 %
   attack payloads (sqlmap / wfuzz corpora). Target: >= 100 000 lines/s.
2. ``sscp-ops logs slow-digest`` against ``pt-query-digest`` on the same slow log in the same
   run: the slow log of a private MariaDB (long_query_time=0) under the test workload,
   replicated with shifted literals to ~100 000 entries. Target: >= 5x faster.

Prints the figures recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import logs_corpus  # noqa: E402
from fx_logs import ISSUE_FORMAT, own_mariadb, run_workload  # noqa: E402

from sscp_ops.config.logs import ExportRules  # noqa: E402
from sscp_ops.loganalysis.access import AccessLogAnalyzer  # noqa: E402
from sscp_ops.loganalysis.nginx import compile_log_format  # noqa: E402
from sscp_ops.tailer import LogFollower  # noqa: E402


def make_access_log(path: Path, lines: int, seed: int = 3) -> int:
    rng = random.Random(seed)
    benign = list(logs_corpus.benign())
    attacks = list(logs_corpus.attacks())
    attack_lines = 0
    start = time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1))
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            if rng.random() < 0.005:
                s = rng.choice(attacks)
                attack_lines += 1
                status = rng.choice((400, 403, 404))
            else:
                s = rng.choice(benign)
                status = rng.choice((200, 200, 200, 200, 304, 404))
                if rng.random() < 0.6:  # most requests unique (pages, cache busters)
                    sep = "&" if "?" in s.target else "?"
                    s = s._replace(target=f"{s.target}{sep}_={rng.randint(1, 10**9)}")
            t = time.strftime("%d/%b/%Y:%H:%M:%S +0800", time.localtime(start + i * 0.3))
            ip = f"10.{rng.randint(0, 20)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            f.write(
                f'{ip} - - [{t}] "GET {s.target} HTTP/1.1" {status} {rng.randint(0, 90000)} '
                f'"https://www.example.gov.cn/" "{s.user_agent}" {rng.expovariate(8):.3f}\n'
            )
    return attack_lines


def cpu_seconds(children: bool = False) -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bench_access(tmp: Path, lines: int) -> None:
    log = tmp / "access.log"
    attack_lines = make_access_log(log, lines)
    size = log.stat().st_size
    parser = compile_log_format(ISSUE_FORMAT)

    # (a) parse + classify + count, lines already in memory (read in 8 MiB chunks).
    follower = LogFollower(log, tmp / "pos.json", max_bytes=8 << 20)
    chunks = []
    while True:
        got = follower.read()
        if not got:
            break
        chunks.extend(got)
    runs = []
    for _ in range(REPEATS):  # best of REPEATS: the machine is shared
        analyzer = AccessLogAnalyzer(parser, "web1", ExportRules())
        c0, w0 = cpu_seconds(), time.perf_counter()
        events = 0
        for chunk in chunks:
            events += len(analyzer.feed_chunk(chunk))
        runs.append((cpu_seconds() - c0, time.perf_counter() - w0))
        assert analyzer.lines == lines and analyzer.unparsed == 0
    cpu, wall = min(runs)
    print(
        f"access log: {lines} lines ({size / 1e6:.0f} MB), {attack_lines} attack lines, "
        f"{events} events"
    )
    print(
        f"  parse+classify+count: {lines / cpu:,.0f} lines/s per core (best of {REPEATS}: CPU "
        f"{cpu:.2f} s, wall {wall:.2f} s; all CPU: {', '.join(f'{c:.2f}' for c, _ in runs)})"
    )
    del chunks

    # (b) end to end: follow the file (8 MiB per read) and analyse it.
    follower = LogFollower(log, tmp / "pos2.json", max_bytes=8 << 20)
    analyzer = AccessLogAnalyzer(parser, "web1", ExportRules())
    c0 = cpu_seconds()
    while True:
        got = follower.read()
        if not got:
            break
        for chunk in got:
            analyzer.feed_chunk(chunk)
        follower.commit()
    cpu = cpu_seconds() - c0
    print(f"  follow+parse+classify+count: {lines / cpu:,.0f} lines/s per core (CPU {cpu:.2f} s)")


_NUM = re.compile(r"\b\d+\b")
REPEATS = 3


def make_slow_log(tmp: Path, copies: int) -> Path:
    with own_mariadb(tmp / "db") as db:
        run_workload(db, rounds=300)
    source = db.slow_log.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp / "slow.log"
    with open(out, "w", encoding="utf-8") as f:
        for k in range(copies):
            for line in source:
                if line.startswith(("#", "SET timestamp", "use ", "/usr", "Tcp", "Time")):
                    f.write(line)
                else:  # a statement: new literals in every copy
                    f.write(_NUM.sub(lambda m, k=k: str(int(m.group(0)) + k * 7919), line))
    shutil.rmtree(tmp / "db", ignore_errors=True)
    return out


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of a command, its output discarded."""
    c0, w0 = cpu_seconds(children=True), time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - w0, cpu_seconds(children=True) - c0


def bench_slow(tmp: Path, copies: int) -> None:
    log = make_slow_log(tmp, copies)
    entries = sum(1 for line in open(log, encoding="utf-8") if line.startswith("# Query_time"))
    pt = shutil.which("pt-query-digest")
    if pt is None:
        sys.exit("pt-query-digest not installed (Debian percona-toolkit)")
    ours = [str(ROOT / ".venv" / "bin" / "sscp-ops"), "logs", "slow-digest", str(log)]
    if not Path(ours[0]).exists():
        ours = [sys.executable, "-m", "sscp_ops", *ours[1:]]
    mine, theirs = [], []
    for _ in range(REPEATS):  # alternate, so both see the same neighbours
        mine.append(timed(ours))
        theirs.append(timed([pt, str(log)]))
    our_wall, our_cpu = min(mine)
    pt_wall, pt_cpu = min(theirs)
    print(f"slow log: {entries} entries ({log.stat().st_size / 1e6:.0f} MB), best of {REPEATS}")
    print(f"  sscp-ops logs slow-digest: wall {our_wall:.2f} s, CPU {our_cpu:.2f} s")
    print(f"  pt-query-digest 3.2.1:     wall {pt_wall:.2f} s, CPU {pt_cpu:.2f} s")
    print(f"  ratio (pt / ours): wall {pt_wall / our_wall:.1f}x, CPU {pt_cpu / our_cpu:.1f}x")
    print(
        "  all runs (wall/CPU s): ours "
        + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in mine)
        + "; pt "
        + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in theirs)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--slow-copies", type=int, default=60)
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin to")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    tmp = Path(tempfile.mkdtemp(prefix="sscp-bench-logs-"))
    try:
        bench_access(tmp, args.lines)
        bench_slow(tmp, args.slow_copies)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
