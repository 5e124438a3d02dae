"""Values cut to the size of their column, the same way on SQLite and MySQL.

SQLite stores any length; MySQL (strict mode) refuses a value over the column's size, and one
such alert used to fail its whole notification on every retry. So the store never hands a
column more than it holds: text is cut deterministically and marked with :data:`CUT_MARK`,
and a fingerprint over the key column's size is replaced by a hash of it (the same alert
always maps to the same key, so idempotency holds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

#: Appended to every value that was cut (a person reads it in the ticket).
CUT_MARK = "…[截断]"
#: MySQL ``TEXT``: bytes, and utf8mb4 needs up to 4 per character.
TEXT_BYTES = 65535
#: The most characters a TEXT column always holds (the API's limit for free text).
TEXT_CHARS = TEXT_BYTES // 4
#: ``occurrences.fingerprint`` / ``tickets.fingerprint``: VARCHAR(64).
KEY_CHARS = 64


def fit_chars(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (a VARCHAR), marked when cut."""
    if len(text) <= limit:
        return text
    return (text[: max(0, limit - len(CUT_MARK))] + CUT_MARK)[:limit]


def fit_bytes(text: str, limit: int = TEXT_BYTES) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 (a TEXT column), marked when cut; never in
    the middle of a character."""
    if len(text) * 4 <= limit:
        return text
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = limit - len(CUT_MARK.encode("utf-8"))
    return raw[:room].decode("utf-8", "ignore") + CUT_MARK


def fit_key(key: str) -> str:
    """A fingerprint that fits the key column: itself, or ``~`` and 63 hex digits of its
    SHA-256 when longer (Alertmanager's own are 16 hex digits, so the two never meet)."""
    if len(key) <= KEY_CHARS:
        return key
    return "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[: KEY_CHARS - 1]


def _dump(labels: Mapping[str, str]) -> str:
    return json.dumps(labels, ensure_ascii=False, sort_keys=True)


def labels_json(labels: Mapping[str, str], limit: int = TEXT_BYTES) -> str:
    """Labels as a JSON object of at most ``limit`` bytes: as they are when they fit; else the
    longest names and values are cut (to half, a quarter … of the longest) until they fit; a
    label set too large even then keeps its first labels (by name) and says how many more
    there were."""
    text = _dump(labels)
    if len(text.encode("utf-8")) <= limit:
        return text
    cap = max(max(len(k), len(v)) for k, v in labels.items())
    fitted: dict[str, str] = dict(labels)
    while cap > 64:
        cap //= 2
        fitted = {}
        for k, v in sorted(labels.items()):
            fitted.setdefault(fit_chars(k, cap), fit_chars(v, cap))
        text = _dump(fitted)
        if len(text.encode("utf-8")) <= limit:
            return text
    kept: dict[str, str] = {}
    used = 64  # braces and the count entry
    for k, v in sorted(fitted.items()):
        size = len(_dump({k: v}).encode("utf-8"))
        if used + size > limit:
            break
        kept[k] = v
        used += size
    kept[CUT_MARK] = f"另有 {len(fitted) - len(kept)} 个标签未保存"
    return _dump(kept)
