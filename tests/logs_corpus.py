"""Labelled request corpora for measuring attack detection, from Debian packages' payload lists.

Attacks (each payload sent as a query parameter value, percent-encoded as a client sends it):

- ``sqlmap``: every test of sqlmap's payload XML files rendered the way sqlmap fills its
  placeholders, inside sqlmap's own boundaries (prefix/suffix) -> sql_injection;
- ``wfuzz-sql``: wfuzz Injections/SQL.txt and vulns/sql_inj.txt -> sql_injection;
- ``wfuzz-xss``: wfuzz Injections/XSS.txt -> xss;
- ``wfuzz-traversal``: wfuzz Injections/Traversal.txt and vulns/dirTraversal*.txt -> path_traversal;
- ``cmd-tune`` / ``cmd-held-out``: command (and code) execution payloads -> command_injection:
  the OS command block of wfuzz Injections/All_attack.txt, the shell-injection CGI probes of
  wfuzz vulns/cgis.txt and wapiti's execPayloads.txt (rendered as wapiti renders it), each sent
  alone and after an ordinary value. A payload's SHA-1 puts it on one side (see
  :func:`cmd_split`): the rules were tuned looking at ``cmd-tune`` only; ``cmd-held-out`` is
  measured, never read for tuning;
- ``scanner-ua``: requests for ordinary pages with the User-Agents of scanners as they send them.

Benign: the real browser User-Agents that sqlmap ships (data/txt/user-agents.txt) and the
ordinary targets in tests/fixtures/logs/benign-targets.txt (links of Debian's HTML docs), plus
search/list API calls with keywords from wfuzz's names list and Chinese service terms, plus
``shell-like-values``: ordinary requests whose values hold the characters and words command
injection uses (``;`` and ``|`` separated lists, ``&``-joined names, command-like search words).

``python tests/logs_corpus.py`` prints the table recorded in docs/log-detection.md.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, quote_plus

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
WFUZZ = Path("/usr/share/wfuzz/wordlist")
SQLMAP = Path("/usr/share/sqlmap/data")
WAPITI = Path("/usr/lib/python3/dist-packages/wapitiCore/data/attacks")

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


_CGI_SHELL = re.compile(r"(?:=|;|\||%3B|%7C)\s*(?:cat|id|ls|system\(|/bin/)", re.I)
#: wapiti's payload placeholders (wapitiCore/attack/attack.py, process_line and mutate).
_WAPITI = {"[TAB]": "\t", "[LF]": "\n", "[FF]": "\f", "[TIME]": "7", "[TIMEOUT]": "", "\\0": "\0"}


def cmd_payloads() -> list[tuple[str, str]]:
    """(source, payload) of the command execution lists; payloads with ``[VALUE]`` keep it."""
    every = _lines(WFUZZ / "Injections" / "All_attack.txt")
    start, stop = every.index("`id`"), every.index("\\n/bin/ls -al\\n") + 1
    out = [("wfuzz-all-attack", p) for p in every[start:stop]]
    for line in _lines(WFUZZ / "vulns" / "cgis.txt"):
        if "?" in line and _CGI_SHELL.search(line.split("?", 1)[1]):
            out.append(("wfuzz-cgis", "/" + line))
    for line in (WAPITI / "execPayloads.txt").read_text(errors="ignore").splitlines():
        line = line.strip(" \n")
        for key, value in _WAPITI.items():
            line = line.replace(key, value)
        if line:
            out.append(("wapiti-exec", line))
    return out


def cmd_targets() -> list[str]:
    """Each payload as a request: CGI probes as they are; list payloads alone and after an
    ordinary value (wapiti's ``[VALUE]`` is the original value), percent-encoded."""
    out = []
    for source, payload in cmd_payloads():
        if source == "wfuzz-cgis":
            out.append(payload)
            continue
        for value in ("", "127.0.0.1"):
            if "[VALUE]" in payload:
                text = payload.replace("[VALUE]", value or "1")
            else:
                text = value + payload
            out.append(_param(text, "host"))
    return out


def cmd_split(target: str) -> str:
    """``tune`` or ``held-out``, fixed by the SHA-1 of the payload (both renderings of one
    payload fall on the same side: the value prefix is taken off before hashing)."""
    key = target.replace("host=127.0.0.1", "host=").replace("host=1", "host=")
    return "held-out" if hashlib.sha1(key.encode()).digest()[0] % 2 else "tune"


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
    for target in cmd_targets():
        yield Sample(f"cmd-{cmd_split(target)}", "command_injection", target, browser)
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
    for i, target in enumerate(shell_like_values()):
        yield Sample("shell-like-values", None, target, uas[i % len(uas)])


def shell_like_values(seed: int = 13) -> Iterator[str]:
    """Ordinary requests whose values use ``;``, ``|``, ``&`` and command-like words: field
    lists from sqlmap's common-columns.txt (``id`` first among them), sort keys, names joined
    with ``&`` and search words from wfuzz's general/common.txt (``cat``, ``echo``, ``ping``...)."""
    rng = random.Random(seed)
    columns = _lines(SQLMAP / "txt" / "common-columns.txt")[:400]
    words = _lines(WFUZZ / "general" / "common.txt")
    for i in range(2000):
        kind = i % 5
        if kind == 0:
            sep = rng.choice((",", ";", "|"))
            fields = sep.join(rng.sample(columns, rng.randint(2, 6)))
            yield f"/api/v1/cases?fields={quote(fields)}&page={rng.randint(1, 9)}"
        elif kind == 1:
            keys = [f"{c}|{rng.choice(('asc', 'desc'))}" for c in rng.sample(columns, 2)]
            yield f"/api/v1/notices?sort={quote(';'.join(keys))}&size=20"
        elif kind == 2:
            a, b = rng.choice(words), rng.choice(words)
            yield f"/portal/search?q={quote(f'{a} & {b}')}&type={rng.choice(words)}"
        elif kind == 3:
            a, b = rng.choice(words), rng.choice(words)
            yield f"/portal/search?q={quote_plus(f'{a} {b}')}&from=home"
        else:
            a = rng.choice(words)
            ids = ";".join(str(rng.randint(1, 99999)) for _ in range(rng.randint(1, 5)))
            yield f"/api/v1/batch?ids={quote(ids)}&op={a}&tags={quote(a + '|' + rng.choice(words))}"


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
