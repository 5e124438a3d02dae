"""Access logs written by a real Nginx, parsed with a parser compiled from the same log_format;
attack classification measured on the sqlmap / wfuzz payload corpora; the event store."""

from __future__ import annotations

import logs_corpus
import pytest
from fx_logs import ISSUE_FORMAT, NginxLog, send, wait_lines
from helpers import missing

from exporters.core import ParseError
from sscp_ops.config.logs import COMBINED, ExportRules
from sscp_ops.events import Event, EventStore
from sscp_ops.loganalysis.access import DURATION_BUCKETS, AccessLogAnalyzer
from sscp_ops.loganalysis.attacks import classify
from sscp_ops.loganalysis.nginx import compile_log_format, parse_time_local
from sscp_ops.tailer import LogFollower

#: Raw request targets sent to Nginx, with the type each must be classified as.
REQUESTS: list[tuple[str, str, str | None]] = [
    ("/index.html", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", None),
    ("/index.html?page=2&size=20&keyword=%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7", "curl/7.88", None),
    ("/search?q=O%27Brien+and+sons", "Mozilla/5.0 Chrome/120", None),
    ("/search?q=rock+and+roll+from+1970s", "Mozilla/5.0 Chrome/120", None),
    ("/missing.png", "Mozilla/5.0 Chrome/120", None),
    ("/item?id=1%27%20AND%201234=1234%20AND%20%27a%27=%27a", "Mozilla/5.0", "sql_injection"),
    (
        "/item?id=-1+UNION+ALL+SELECT+NULL,CONCAT(0x71,user()),NULL--+-",
        "Mozilla/5.0",
        "sql_injection",
    ),
    ("/item?id=1;SELECT+SLEEP(5)%23", "Mozilla/5.0", "sql_injection"),
    ("/q?s=%3Cscript%3Ealert(document.cookie)%3C/script%3E", "Mozilla/5.0", "xss"),
    ("/q?s=%22%3E%3Cimg+src=x+onerror=alert(1)%3E", "Mozilla/5.0", "xss"),
    ("/dl?file=../../../../etc/passwd", "Mozilla/5.0", "path_traversal"),
    ("/dl?file=%252e%252e%252f%252e%252e%252fetc%252fshadow", "Mozilla/5.0", "path_traversal"),
    ("/.git/config", "Mozilla/5.0", "path_traversal"),
    ("/ping?host=127.0.0.1;cat+/etc/passwd", "Mozilla/5.0", "command_injection"),
    ("/ping?host=$(whoami)", "Mozilla/5.0", "command_injection"),
    ("/index.html", "sqlmap/1.7.2#stable (https://sqlmap.org)", "scanner"),
    ("/phpmyadmin/index.php", "Mozilla/5.0", "scanner"),
]


@pytest.mark.slow
def test_real_nginx_log_parsed_counted_and_classified(nginx_log: NginxLog, tmp_path) -> None:
    statuses = {}
    sent_bytes = 0
    for target, ua, _ in REQUESTS:
        status, size = send(nginx_log, target, ua)
        statuses[status // 100] = statuses.get(status // 100, 0) + 1
        sent_bytes += size
    status, size = send(nginx_log, "/slow", "Mozilla/5.0")
    assert status == 200
    statuses[2] += 1
    sent_bytes += size
    total = len(REQUESTS) + 1
    wait_lines(nginx_log.access_log, total)

    follower = LogFollower(nginx_log.access_log, tmp_path / "pos.json")
    analyzer = AccessLogAnalyzer(compile_log_format(ISSUE_FORMAT), "web1", ExportRules())
    events: list[Event] = []
    for chunk in follower.read():
        events.extend(analyzer.feed_chunk(chunk))
    assert analyzer.lines == total and analyzer.unparsed == 0
    assert analyzer.responses["2xx"] == statuses[2]
    assert analyzer.responses["4xx"] == statuses.get(4, 0)
    assert analyzer.bytes_sent == sent_bytes
    # The proxied /slow request took > 2 s: it is the only one above the 2 s bucket.
    over_2s = sum(analyzer.duration_counts[DURATION_BUCKETS.index(2.0) + 1 :])
    assert over_2s == 1
    assert sum(analyzer.duration_counts) == total

    expected = [t for _, _, t in REQUESTS if t is not None]
    assert sorted(e.type for e in events) == sorted(expected)
    assert all(e.client_ip == "127.0.0.1" and e.key.startswith("web1:") for e in events)
    for kind in set(expected):
        assert analyzer.security[kind] == expected.count(kind)


def test_parser_reads_each_variable_of_the_format() -> None:
    parser = compile_log_format(ISSUE_FORMAT)
    line = (
        '10.1.2.3 - alice [28/Nov/2026:21:02:46 +0800] "GET /a?b=1 HTTP/1.1" 404 153 '
        '"https://x/" "Mozilla/5.0 (X11)" 2.513'
    )
    rec = parser.parse(line)
    assert rec is not None
    assert (rec.remote_addr, rec.remote_user, rec.method, rec.target) == (
        "10.1.2.3",
        "alice",
        "GET",
        "/a?b=1",
    )
    assert (rec.status, rec.bytes_sent, rec.request_time) == (404, 153, 2.513)
    assert rec.time == parse_time_local("28/Nov/2026:13:02:46 +0000")
    assert rec.user_agent == "Mozilla/5.0 (X11)"
    # A line of another format, and a garbled request line, are not misread.
    assert parser.parse('10.1.2.3 - - [28/Nov/2026:21:02:46 +0800] "GET / HTTP/1.1" 200') is None
    bad = compile_log_format(COMBINED).parse(
        '1.2.3.4 - - [28/Nov/2026:21:02:46 +0800] "\\x16\\x03\\x01" 400 157 "-" "-"'
    )
    assert bad is not None and bad.status == 400 and bad.target == "\\x16\\x03\\x01"
    with pytest.raises(ParseError):
        compile_log_format('$remote_addr "$request"')


# Bounds on the corpora of docs/log-detection.md (measured values there; bounds a little below).
DETECTION_MIN = {
    "sqlmap": 0.99,
    "wfuzz-sql": 0.55,
    "wfuzz-xss": 0.97,
    "wfuzz-traversal": 0.95,
    "cmd-tune": 0.95,
    "cmd-held-out": 0.87,
    "scanner-ua": 1.0,
}
FALSE_POSITIVE_MAX = {"doc-links": 0.002, "browser-requests": 0.001, "shell-like-values": 0.003}


def test_detection_and_false_positive_rates_on_payload_corpora() -> None:
    for path in (logs_corpus.WFUZZ, logs_corpus.SQLMAP, logs_corpus.WAPITI):
        if not path.is_dir():
            missing(f"{path} (Debian packages wfuzz, sqlmap and wapiti)")
    rates = logs_corpus.measure()
    assert set(rates) == set(DETECTION_MIN) | set(FALSE_POSITIVE_MAX)
    for corpus, low in DETECTION_MIN.items():
        n, ok, _ = rates[corpus]
        assert n > 0 and ok / n >= low, (corpus, ok, n)
    for corpus, high in FALSE_POSITIVE_MAX.items():
        n, fp, _ = rates[corpus]
        assert n > 1000 and fp / n <= high, (corpus, fp, n)


def test_command_injection_held_out_split_and_false_positives_on_all_benign() -> None:
    """The split the rules were never tuned on, and every benign request together."""
    for path in (logs_corpus.WFUZZ, logs_corpus.SQLMAP, logs_corpus.WAPITI):
        if not path.is_dir():
            missing(f"{path} (Debian packages wfuzz, sqlmap and wapiti)")
    targets = logs_corpus.cmd_targets()
    held_out = [t for t in targets if logs_corpus.cmd_split(t) == "held-out"]
    tune = [t for t in targets if logs_corpus.cmd_split(t) == "tune"]
    # Both renderings of a payload fall on one side; the sides share no payload.
    assert len(held_out) > 60 and len(tune) > 50 and not set(held_out) & set(tune)
    found = [classify(t) for t in held_out]
    detected = sum(f is not None and f.type == "command_injection" for f in found)
    benign = list(logs_corpus.benign())
    fp = sum(classify(s.target, s.user_agent) is not None for s in benign)
    print(
        f"command injection held out: {detected}/{len(held_out)} ({detected / len(held_out):.1%}); "
        f"false positives: {fp}/{len(benign)} ({fp / len(benign):.3%})"
    )
    assert detected / len(held_out) >= 0.87
    assert len(benign) > 9000 and fp / len(benign) <= 0.003


def test_command_injection_shapes_and_their_benign_twins() -> None:
    attacks = (
        "/ping?host=127.0.0.1;id;",
        "/ping?host=%7Cid%7C",
        "/ping?host=127.0.0.1%0aid",
        "/ping?host=x%7Csleep%2060%3B",
        "/cgi-bin/x.cgi?cmd=cat%20/etc/passwd",
        "/p?setup=;system(%27cat%20/etc/passwd%27)",
        "/p?x=%27.exit(md5(%27a%27));//",
        "/p?f=../../usr/bin/env%7C",
        "/p?x=a%26%26whoami",
        "/p?x=%5Cn/bin/ls%20-al%5Cn",
    )
    for target in attacks:
        found = classify(target)
        assert found is not None and found.type == "command_injection", (target, found)
    for target in (
        "/api/v1/cases?fields=name%7Cid&page=2",
        "/api/v1/cases?fields=id;name;status",
        "/portal/search?q=cat%20food%20%26%20dog",
        "/portal/search?q=ping%20an%20bank",
        "/api/v1/notices?sort=createTime%7Cdesc%3Bid%7Casc",
        "/api/v1/list?page=1&type=notice&dir=asc",
    ):
        assert classify(target) is None, target


def test_hostile_long_targets_stay_linear_time() -> None:
    # RE2 has no backtracking: 100x the input costs about 100x the time, never exponentially.
    import time

    def cost(n: int) -> float:
        target = "/p?x=" + ";" * n + "|" * n + "$(" * n + "`" * n + "a " * n
        t0 = time.perf_counter()
        for _ in range(3):
            classify(target)
        return time.perf_counter() - t0

    cost(100)
    small, large = cost(1_000), cost(100_000)
    assert large < max(small, 1e-4) * 1000 and large < 2.0, (small, large)


def test_each_request_is_classified_once_by_its_most_specific_type() -> None:
    # XSS that also looks like a quote-terminated SQL string is XSS.
    assert classify("/q?s=%27;alert(String.fromCharCode(88,83,83))//").type == "xss"
    # A traversal sent by sqlmap is a traversal, not just a scanner.
    found = classify("/dl?f=../../etc/passwd", "sqlmap/1.7")
    assert found is not None and found.type == "path_traversal"
    assert classify("/", "sqlmap/1.7").rule == "scan-user-agent"


def test_event_store_masks_dedups_and_queries(tmp_path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    detail = "GET /reset?phone=13812345678&id=11010519491231002X%27+or+1=1-- " + "x" * 500
    ev = Event(
        "web1:abc:10", 1000.0, "web1", "sql_injection", "sqli-tautology", "1.2.3.4", "", detail
    )
    assert store.add([ev, ev._replace(key="web1:abc:99", time=2000.0)]) == 2
    assert store.add([ev]) == 0  # the same log bytes read again after a crash
    got = store.query(since=0, until=1500)
    assert [e.key for e in got] == ["web1:abc:10"]
    stored = got[0].detail
    assert "13812345678" not in stored and "138****5678" in stored
    assert "11010519491231002X" not in stored
    assert len(stored) <= 300
    assert [e.key for e in store.query(types=["xss"])] == []
    store.close()
