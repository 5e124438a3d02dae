"""A request's JSON body, read the same way by every endpoint.

What JSON allows but no store can hold is refused here with 400 and the field named, instead
of failing later with 500: nesting deeper than :data:`MAX_DEPTH` (100 000 levels used to
exhaust the parser's recursion) and lone UTF-16 surrogates (``"\\ud800"`` decodes to a string
that cannot be encoded as UTF-8). A body over ``MAX_CONTENT_LENGTH`` is 413, with or without
a Content-Length (a chunked one is cut off while it is read).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from flask import Response, abort, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

#: Alertmanager's body is 4 levels deep, the API's 2.
MAX_DEPTH = 32
#: A ``\ud800``-``\udfff`` escape or its raw (CESU) bytes: only then is the body walked.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def bad_request(field: str, problem: str) -> Response:
    resp = jsonify(error=f"{field}: {problem}", field=field)
    resp.status_code = 400
    return resp


def _refuse(field: str, problem: str) -> NoReturn:
    abort(bad_request(field, problem))


def json_body() -> Any:
    """The parsed body; ``None`` when it is empty or not JSON (the caller decides)."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body is read up to the limit and cut there, not refused: refuse it here
        # (one of exactly the limit's size is refused too, it cannot be told apart).
        raise RequestEntityTooLarge()
    try:
        data = request.get_json(silent=True, force=True)
    except RecursionError:
        _refuse("(body)", f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(data, dict | list):
        _check(data, bool(_SURROGATE.search(raw)))
    elif isinstance(data, str) and _SURROGATE.search(raw) and _has_surrogate(data):
        _refuse("(body)", "lone UTF-16 surrogate (not Unicode text)")
    return data


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _field(path: tuple | None) -> str:
    """``alerts[0].labels`` from the linked path ``(parent, key)`` built by :func:`_check`."""
    keys = []
    while path is not None:
        path, key = path
        keys.append(key)
    out = ""
    for key in reversed(keys):
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out or "(body)"


def _check(data: dict | list, surrogates: bool) -> None:
    """Depth, and (when the raw body may hold one) a lone surrogate, naming its field."""
    stack: list[tuple[Any, tuple | None, int]] = [(data, None, 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            _refuse(_field(path), f"JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if surrogates and _has_surrogate(key):
                    _refuse(_field(path), "lone UTF-16 surrogate in a key (not Unicode text)")
                if surrogates or isinstance(item, dict | list):
                    stack.append((item, (path, key), depth + 1))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if surrogates or isinstance(item, dict | list):
                    stack.append((item, (path, i), depth + 1))
        elif isinstance(value, str) and _has_surrogate(value):
            _refuse(_field(path), "lone UTF-16 surrogate (not Unicode text)")
