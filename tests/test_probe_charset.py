"""The SLA probe decodes a page as a browser would (issue 16, item 15): the charset of the
Content-Type header, else the page's ``<meta charset>``, else UTF-8. Nginx's default
(``charset off``) serves a UTF-8 Chinese page as bare ``text/html``; requests then guesses
ISO-8859-1 and the keyword was never found, so a healthy site was reported down."""

from __future__ import annotations

import pytest
import requests
from fx_probe import KEYWORD, PAGE

from exporters.probe import ProbeCollector, body_has_keyword, page_charset
from sscp_ops.config.targets import ProbeTarget

GBK_META = PAGE.replace("<head>", '<head><meta charset="gbk">')
GBK_HTTP_EQUIV = PAGE.replace(
    "<head>", '<head><meta http-equiv="Content-Type" content="text/html; charset=GB2312">'
)
UTF8_WRONG_META = PAGE.replace("<head>", '<head><meta charset="utf-8">')

# Files served by a real nginx with ``charset off`` (no charset in Content-Type), and what a
# browser makes of them: (file, bytes, content type nginx sends, keyword found).
SERVED = [
    ("utf8.html", PAGE.encode(), "text/html", True),
    ("gbk-meta.html", GBK_META.encode("gbk"), "text/html", True),
    ("gb2312-equiv.html", GBK_HTTP_EQUIV.encode("gbk"), "text/html", True),
    ("utf8-meta.html", UTF8_WRONG_META.encode(), "text/html", True),
    ("plain.txt", KEYWORD.encode(), "text/plain", True),
]


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/html", b"<html>", "utf-8"),  # nothing declared: UTF-8
        ("text/html; charset=GBK", b'<meta charset="utf-8">', "gbk"),  # header wins
        ("text/html", b'<meta charset="gbk">', "gbk"),
        (
            "text/html",
            b"<meta http-equiv=Content-Type content='text/html;charset=gb2312'>",
            "gb2312",
        ),
        ("text/html; charset=no-such", b"", "utf-8"),  # unknown name: next rule
        ("text/html", b'<meta charset="no-such">', "utf-8"),
        ("text/html", b" " * 2000 + b'<meta charset="gbk">', "utf-8"),  # past the prescan
        (None, b"", "utf-8"),
    ],
)
def test_page_charset_header_then_meta_then_utf8(content_type, body, expected) -> None:
    assert page_charset(content_type, body) == expected


def test_probe_finds_keyword_on_nginx_default_charset_off(nginx_factory) -> None:
    server = nginx_factory("charset off;\n")
    for name, data, _, _ in SERVED:
        (server.root / name).write_bytes(data)
    found = {}
    for name, _data, content_type, expected in SERVED:
        # What nginx really sends: no charset parameter.
        resp = requests.get(server.url(f"/{name}"), timeout=5)
        assert resp.headers["Content-Type"] == content_type
        probe = ProbeTarget(name="home", url=server.url(f"/{name}"), keyword=KEYWORD)
        collector = ProbeCollector(probe)
        try:
            result = collector.run(5.0)
        finally:
            collector.close()
        assert result.success is expected, (name, result.reason)
        found[name] = result.success
    assert sum(found.values()) == len(SERVED) == 5


def test_body_has_keyword_keeps_its_contract() -> None:
    assert body_has_keyword(PAGE.encode("gbk"), "gbk", KEYWORD)
    assert body_has_keyword(PAGE.encode(), None, KEYWORD)
