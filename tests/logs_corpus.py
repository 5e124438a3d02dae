"""Labelled request corpora for measuring attack detection, from Debian packages' payload lists.

Attacks (each payload sent as a query parameter value, percent-encoded as a client sends it):

- ``sqlmap``: every test of sqlmap's payload XML files rendered the way sqlmap fills its
  placeholders, inside sqlmap's own boundaries (prefix/suffix) -> sql_injection;
- ``wfuzz-sql``: wfuzz Injections/SQL.txt and vulns/sql_inj.txt -> sql_injection;
- ``wfuzz-xss``: wfuzz Injections/XSS.txt -> xss;
- ``wfuzz-traversal``: wfuzz Injections/Traversal.txt and vulns/dirTraversal*.txt -> path_traversal;
- ``wfuzz-cmd``: the OS command block of wfuzz Injections/All_attack.txt -> command_injection;
- ``scanner-ua``: requests for ordinary pages with the User-Agents of scanners as they send them.

Benign: the real browser User-Agents that sqlmap ships (data/txt/user-agents.txt) and the
ordinary targets in tests/fixtures/logs/benign-targets.txt (links of Debian's HTML docs), plus
search/list API calls with keywords from wfuzz's names list and Chinese service terms.

``python tests/logs_corpus.py`` prints the table recorded in docs/log-detection.md.
"""

from __future__ import annotations

import random
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
WFUZZ = Path("/usr/share/wfuzz/wordlist")
SQLMAP = Path("/usr/share/sqlmap/data")

#: What scanners put in User-Agent (each tool's default, from its documentation or source).
SCANNER_UAS = (
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Wfuzz/3.1.0",
    "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Nuclei",
    "Fuzz Faster U Fool v2.0.0",
    "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)",
    "gobuster/3.5",
    "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
    "Mozilla/5.0 (compatible; Zgrab/0.x)",
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1; Acunetix Web Vulnerability Scanner)",
)

CHINESE_TERMS = (
    "营业执照",
    "食品安全",
    "投诉举报",
    "行政处罚",
    "双随机一公开",
    "药品监管",
    "特种设备",
    "市场主体登记",
    "价格监督检查",
    "广告审查",
    "网络交易监管",
    "质量抽检",
)


class Sample(NamedTuple):
    corpus: str
    expected: str | None  # attack type, None for benign
    target: str
    user_agent: str


def _lines(path: Path) -> list[str]:
    return [
        line.rstrip("\n")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _param(payload: str, name: str = "id") -> str:
    # Clients percent-encode what is not allowed in a query; payload lists that are already
    # encoded (%27) stay as they are, as a fuzzer sends them.
    return f"/api/item?{name}={quote(payload, safe='%/:=&()*,;!$~._-')}"


_PLACEHOLDERS = {
    "GENERIC_SQL_COMMENT": "-- -",
    "SLEEPTIME": "5",
    "DELIMITER_START": "0x71706a7171",
    "DELIMITER_STOP": "0x716b7a7071",
    "ORIGVALUE": "1",
    "ORIGINAL": "1",
    "DELAYED": "1",
    "SPACE": " ",
    "CHAR": "NULL",
}


def _render(template: str, rng: random.Random) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key.startswith("RANDNUM"):
            return str(rng.randint(1000, 9999))
        if key.startswith("RANDSTR"):
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4))
        if key == "INFERENCE":
            n = rng.randint(1000, 9999)
            return f"{n}={n}"
        if key == "UNION":
            return "UNION ALL SELECT NULL,NULL,CONCAT(0x71706a7171,0x4a6b,0x716b7a7071)"
        return _PLACEHOLDERS.get(key, "1")

    text = template
    for _ in range(3):
        text = re.sub(r"\[([A-Z_]+[0-9]*)\]", sub, text)
    return text


def sqlmap_payloads(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    boundaries = [
        (b.findtext("prefix") or "", b.findtext("suffix") or "")
        for b in ET.parse(SQLMAP / "xml" / "boundaries.xml").getroot().iter("boundary")
        if int(b.findtext("level") or 5) <= 3
    ]
    out = []
    for xml in sorted((SQLMAP / "xml" / "payloads").glob("*.xml")):
        for test in ET.parse(xml).getroot().iter("test"):
            payload = test.findtext("request/payload")
            if not payload:
                continue
            comment = test.findtext("request/comment") or ""
            for prefix, suffix in rng.sample(boundaries, 3):
                body = f"{prefix} {payload}{comment} {suffix}".rstrip()
                out.append(_render("1" + body, rng))
    return out


def attacks() -> Iterator[Sample]:
    browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"
    for p in sqlmap_payloads():
        yield Sample("sqlmap", "sql_injection", _param(p), browser)
    for p in _lines(WFUZZ / "Injections" / "SQL.txt") + _lines(WFUZZ / "vulns" / "sql_inj.txt"):
        yield Sample("wfuzz-sql", "sql_injection", _param(p), browser)
    for p in _lines(WFUZZ / "Injections" / "XSS.txt"):
        yield Sample("wfuzz-xss", "xss", _param(p, "q"), browser)
    trav = _lines(WFUZZ / "Injections" / "Traversal.txt")
    for name in ("dirTraversal.txt", "dirTraversal-nix.txt", "dirTraversal-win.txt"):
        trav += _lines(WFUZZ / "vulns" / name)
    for p in trav:
        yield Sample("wfuzz-traversal", "path_traversal", _param(p, "file"), browser)
    every = _lines(WFUZZ / "Injections" / "All_attack.txt")
    start, stop = every.index("`id`"), every.index("\\n/bin/ls -al\\n") + 1
    for p in every[start:stop]:
        yield Sample("wfuzz-cmd", "command_injection", _param(p, "host"), browser)
    for ua in SCANNER_UAS:
        for target in ("/", "/index.html", "/api/notice?page=1"):
            yield Sample("scanner-ua", "scanner", target, ua)


def benign() -> Iterator[Sample]:
    uas = [line for line in _lines(SQLMAP / "txt" / "user-agents.txt") if not line.startswith("#")]
    targets = _lines(FIXTURES / "benign-targets.txt")
    for i, target in enumerate(targets):
        yield Sample("doc-links", None, target, uas[i % len(uas)])
    rng = random.Random(11)
    names = _lines(WFUZZ / "others" / "names.txt")
    words = names + list(CHINESE_TERMS)
    for i, ua in enumerate(uas):
        word = words[i % len(words)]
        page = rng.randint(1, 40)
        kind = i % 4
        if kind == 0:
            target = f"/api/v1/cases?page={page}&size=20&keyword={quote(word)}&sort=createTime,desc"
        elif kind == 1:
            target = f"/portal/search?q={quote(word + ' ' + rng.choice(words))}&type=notice"
        elif kind == 2:
            target = (
                f"/api/v1/inspections/{rng.randint(10000, 99999)}/records"
                f"?from=2026-{rng.randint(1, 12):02d}-01&to=2026-12-31"
            )
        else:
            target = f"/static/js/app.{rng.getrandbits(32):08x}.js"
        yield Sample("browser-requests", None, target, ua)


def measure() -> dict[str, tuple[int, int, int]]:
    """corpus -> (samples, correct detections or false positives, any detection)."""
    from sscp_ops.loganalysis.attacks import classify

    out: dict[str, list[int]] = {}
    for sample in [*attacks(), *benign()]:
        row = out.setdefault(sample.corpus, [0, 0, 0])
        found = classify(sample.target, sample.user_agent)
        row[0] += 1
        if sample.expected is None:
            row[1] += found is not None
        else:
            row[1] += found is not None and found.type == sample.expected
        row[2] += found is not None
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def misses(corpus: str) -> Iterator[tuple[Sample, object]]:
    from sscp_ops.loganalysis.attacks import classify

    for sample in [*attacks(), *benign()]:
        if sample.corpus != corpus:
            continue
        found = classify(sample.target, sample.user_agent)
        wrong = found is not None if sample.expected is None else found is None
        wrong = wrong or (found is not None and sample.expected not in (None, found.type))
        if wrong:
            yield sample, found


if __name__ == "__main__":
    if len(sys.argv) > 1:
        for sample, found in misses(sys.argv[1]):
            print(found, sample.target, sample.user_agent if sample.corpus.startswith("s") else "")
        sys.exit(0)
    print("| corpus | samples | detected as the right type | detected (any type) |")
    print("| --- | ---: | ---: | ---: |")
    for corpus, (n, ok, anyd) in measure().items():
        print(f"| {corpus} | {n} | {ok} ({ok / n:.1%}) | {anyd} ({anyd / n:.1%}) |")
