"""Benchmark ``sscp-ops mask text`` against GNU sed masking mobiles only.

Run by hand: ``.venv/bin/python benchmarks/mask_text.py [--lines 200000]``.

Generates access-log-like lines (a third hold a mobile, a tenth an ID number, every line an
order number and a timestamp), then times in the same run ``sed -E`` with one mobile regex (the
reference: the cheapest masking a shell pipeline would do, and it also mangles order numbers)
and ``sscp-ops mask text`` (mobiles, landlines, ID numbers with check digit and date, bank
cards with Luhn, e-mail), and prints lines per second and the ratio.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SED = r"s/(1[3-9][0-9])[0-9]{4}([0-9]{4})/\1****\2/g"


def make_lines(n: int) -> str:
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(7)
    rnd = random.Random(7)
    phones = [fake.phone_number() for _ in range(500)]
    ids = [fake.ssn() for _ in range(200)]
    out = []
    for i in range(n):
        parts = [
            f"2026-11-28T10:{i // 6000 % 60:02d}:{i // 100 % 60:02d}+08:00",
            f"10.0.{rnd.randrange(256)}.{rnd.randrange(256)}",
            f'"GET /api/case/{rnd.randrange(10**6)}?order=2026{rnd.randrange(10**14):014d}'
            ' HTTP/1.1"',
            "200",
            str(rnd.randrange(100, 90000)),
        ]
        if i % 3 == 0:
            parts.append(f"tel={rnd.choice(phones)}")
        if i % 10 == 0:
            parts.append(f"idno={rnd.choice(ids)}")
        out.append(" ".join(parts))
    return "\n".join(out) + "\n"


def timed(cmd: list[str], src: Path) -> float:
    start = time.perf_counter()
    with src.open("rb") as fh:
        subprocess.run(cmd, stdin=fh, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "access.log"
        src.write_text(make_lines(args.lines), encoding="utf-8")
        size = src.stat().st_size
        sed = timed(["sed", "-E", SED], src)
        ours = timed([sys.executable, "-m", "sscp_ops", "mask", "text"], src)
    print(f"lines: {args.lines} ({size / 1e6:.1f} MB)")
    for name, secs in (("sed -E (mobiles only, reference)", sed), ("sscp-ops mask text", ours)):
        print(f"{name:<36} {secs:7.2f} s {args.lines / secs:10.0f} lines/s  x{secs / sed:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
