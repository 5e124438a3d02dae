"""The pure part of a journey step: substituting values, extracting, checking an answer.

No I/O here: :mod:`.runner` sends the requests and hands each answer to these functions.
Every failure is a :class:`StepFailure` whose message says what was expected and what came;
it never holds a secret (the runner masks the values read from ``{secret:...}`` files).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from functools import cached_property, lru_cache
from typing import Any

from sscp_ops.config.journeys import PLACEHOLDER, Expect, Extract


class StepFailure(Exception):
    """A step did not get what it expected; ``str()`` is the reason shown in the table."""


class MissingValue(StepFailure):
    """A ``{name}`` whose extracting step failed (a clean-up step then has nothing to do)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    seconds: float

    @cached_property
    def text(self) -> str:
        """The body decoded with the charset of ``Content-Type``, else UTF-8."""
        return decode(self.body, self.headers.get("Content-Type", ""))

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            raise StepFailure(f"body is not JSON: {self.text[:80]!r}") from None


def decode(body: bytes, content_type: str) -> str:
    msg = Message()
    msg["Content-Type"] = content_type or "text/plain"
    charset = msg.get_content_charset() or "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def substitute(value: Any, values: Mapping[str, str], read_secret: Callable[[str], str]) -> Any:
    """``value`` with every ``{name}`` replaced by ``values[name]`` and every
    ``{secret:/path}`` by ``read_secret(path)``, through strings, dicts and lists."""
    if isinstance(value, str):

        def one(match) -> str:
            name = match.group(1)
            if name.startswith("secret:"):
                return read_secret(name[len("secret:") :])
            if name not in values:
                raise MissingValue(f"{{{name}}} has no value (the step that extracts it failed)")
            return values[name]

        return PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {
            substitute(k, values, read_secret): substitute(v, values, read_secret)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute(v, values, read_secret) for v in value]
    return value


@lru_cache(maxsize=256)
def _jsonpath(path: str):
    from jsonpath_ng.ext import parse

    return parse(path)


def jsonpath_first(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value of the first match)."""
    matches = _jsonpath(path).find(document)
    if not matches:
        return False, None
    return True, matches[0].value


def _select(text: str, selector: str) -> list:
    if "<" not in text:  # no element at all (and BeautifulSoup would warn about a "filename")
        return []
    from bs4 import BeautifulSoup

    return BeautifulSoup(text, "html.parser").select(selector, limit=1)


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def extract(answer: Answer, name: str, spec: Extract) -> str:
    """The value ``spec`` takes from ``answer``; :class:`StepFailure` when there is none."""
    source = answer.text
    if spec.header is not None:
        header = answer.headers.get(spec.header)
        if header is None:
            raise StepFailure(f"extract {name}: no {spec.header} header")
        if spec.regex is None:
            return header
        source = header
    if spec.regex is not None:
        import re

        match = re.search(spec.regex, source)
        if match is None:
            where = f"the {spec.header} header" if spec.header else "the body"
            raise StepFailure(f"extract {name}: regex {spec.regex!r} found nothing in {where}")
        return match.group(1) if match.re.groups else match.group(0)
    if spec.css is not None:
        found = _select(answer.text, spec.css)
        if not found:
            raise StepFailure(f"extract {name}: no element matches {spec.css!r}")
        element = found[0]
        attr = spec.attr or ("value" if element.name in ("input", "option") else None)
        if attr is None:
            return element.get_text(strip=True)
        value = element.get(attr)
        if value is None:
            raise StepFailure(f"extract {name}: {spec.css!r} has no attribute {attr!r}")
        return " ".join(value) if isinstance(value, list) else str(value)
    assert spec.jsonpath is not None
    ok, value = jsonpath_first(answer.json(), spec.jsonpath)
    if not ok:
        raise StepFailure(f"extract {name}: JSONPath {spec.jsonpath} matches nothing")
    return _stringify(value)


def check(answer: Answer, expect: Expect) -> None:
    """Raise :class:`StepFailure` for the first unmet expectation: status, time, text, CSS,
    JSONPath (in this order, so a broken page is reported by its status, not its content)."""
    wanted = expect.status
    if wanted is None and answer.status >= 400:
        raise StepFailure(f"status {answer.status}, expected below 400")
    if wanted is not None and answer.status not in wanted:
        shown = " or ".join(map(str, wanted))
        raise StepFailure(f"status {answer.status}, expected {shown}")
    # max_seconds is the contract's "< 2 秒": a step must finish in under it; exactly 2 s fails.
    if answer.seconds >= expect.max_seconds:
        over = "over" if answer.seconds > expect.max_seconds else "not under"
        raise StepFailure(f"took {answer.seconds:.2f} s, {over} the {expect.max_seconds:g} s limit")
    if expect.contains is not None and expect.contains not in answer.text:
        raise StepFailure(f"body does not contain {expect.contains!r}")
    if expect.css is not None and not _select(answer.text, expect.css):
        raise StepFailure(f"no element matches {expect.css!r}")
    if expect.jsonpath:
        document = answer.json()
        for path, value in expect.jsonpath.items():
            ok, got = jsonpath_first(document, path)
            if not ok:
                raise StepFailure(f"JSONPath {path} matches nothing (expected {value!r})")
            if got != value:
                raise StepFailure(f"JSONPath {path} is {got!r}, expected {value!r}")
