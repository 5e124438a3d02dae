"""The ``journeys:`` section: scripted user journeys, run as probes and as a release gate.

Shape (issue 21; docs/journeys.md)::

    journeys:
      - name: inspection-form
        interval: 300                      # seconds between runs as a probe
        steps:
          - name: 登录页
            request: {method: GET, url: "https://platform/login"}
            extract: {csrf: {regex: 'name="csrf" value="([^"]+)"'}}   # also css:, jsonpath:
          - name: 登录
            request: {method: POST, url: "https://platform/login",
                      form: {user: probe, password: "{secret:/etc/sscp-ops/probe.pass}",
                             csrf: "{csrf}"}}
            expect: {status: 302}
          - name: 企业查询
            request: {method: GET, url: "https://platform/search?q=测试企业"}
            expect: {status: 200, contains: "测试企业", max_seconds: 2}

Values in ``url``, ``headers``, ``form`` and ``json`` may hold ``{name}`` (a value extracted by
an earlier step, or the built-in ``{run_id}``) and ``{secret:/path}`` (the content of a file,
read at run time). A reference to a name no earlier step extracts fails at load time, as does
a password-like field given inline instead of as ``{secret:...}``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from sscp_ops.config.base import Model, Name, TlsConfig, unique_names

#: ``{name}`` or ``{secret:/path}`` inside a value.
PLACEHOLDER = re.compile(r"\{(secret:[^{}\s]+|[A-Za-z_][A-Za-z0-9_]*)\}")
#: Names every run defines before its first step.
BUILTINS = frozenset({"run_id"})
#: Keys whose values must come from ``{secret:...}`` (or an extracted ``{name}``).
_SECRET_KEY = re.compile(r"pass|secret|token|authorization", re.IGNORECASE)

StepName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s{}\"\\][^{}\"\\]*$")]
VarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Seconds = Annotated[float, Field(gt=0, le=300)]


def _compiles(kind: str, text: str) -> str:
    """Refuse a pattern its library cannot compile, at load time rather than on the first run."""
    try:
        if kind == "regex":
            re.compile(text)
        elif kind == "css":
            import soupsieve

            soupsieve.compile(text)
        else:
            from jsonpath_ng.ext import parse

            parse(text)
    except Exception as exc:  # re.error, SelectorSyntaxError, JsonPathParserError...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"invalid {kind} {text!r}: {first}") from None
    return text


def _regex(text: str) -> str:
    return _compiles("regex", text)


def _css(text: str) -> str:
    return _compiles("css", text)


def _jsonpath(text: str) -> str:
    return _compiles("jsonpath", text)


Regex = Annotated[str, Field(min_length=1), AfterValidator(_regex)]
Css = Annotated[str, Field(min_length=1), AfterValidator(_css)]
JsonPath = Annotated[str, Field(min_length=1), AfterValidator(_jsonpath)]


class Extract(Model):
    """One value taken from a step's answer: exactly one of ``regex`` (the first group, else
    the whole match), ``css`` (the first matching element: its ``attr``, else its text; an
    ``input`` defaults to its ``value``) or ``jsonpath`` (the first match). With ``header``
    the value comes from that response header (``regex`` optional) instead of the body."""

    regex: Regex | None = None
    css: Css | None = None
    attr: Annotated[str, Field(min_length=1)] | None = None
    jsonpath: JsonPath | None = None
    header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Extract:
        given = [k for k in ("regex", "css", "jsonpath") if getattr(self, k) is not None]
        if self.header is not None:
            if self.css is not None or self.jsonpath is not None:
                raise ValueError("header goes with regex (or alone), not css or jsonpath")
        elif len(given) != 1:
            raise ValueError("give exactly one of regex, css, jsonpath (or header)")
        if self.attr is not None and self.css is None:
            raise ValueError("attr goes with css")
        return self


class Expect(Model):
    """Checks of a step's answer, in this order: status, time, contains, css, jsonpath."""

    #: One status or a list; unset: any status below 400.
    status: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    #: Text the body must hold (decoded with its declared charset, else UTF-8).
    contains: Annotated[str, Field(min_length=1)] | None = None
    #: A CSS selector at least one element of the HTML body must match.
    css: Css | None = None
    #: JSONPath -> the value its first match must equal (the JSON body).
    jsonpath: dict[JsonPath, Any] = {}
    #: The contract's query response limit (一.(四).2): 2 s unless set.
    max_seconds: Seconds = 2.0

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class Request(Model):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    headers: dict[str, str] = {}
    form: dict[str, str] | None = None
    #: A JSON body (``json:`` in the file).
    json_body: Any = Field(default=None, alias="json")
    #: Seconds the request may take before it fails (the step's ``max_seconds`` is the check).
    timeout: Seconds = 10.0

    @model_validator(mode="after")
    def _one_body(self) -> Request:
        if self.form is not None and self.json_body is not None:
            raise ValueError("give form or json, not both")
        for name in _placeholders([self.url, self.headers, self.form, self.json_body]):
            if name.startswith("secret:") and not name[7:].startswith("/"):
                raise ValueError(f"{{{name}}} needs an absolute path")
        parts = {"headers": self.headers, "form": self.form, "json": self.json_body}
        inline = _inline_secrets(parts, "")
        if inline:
            raise ValueError(
                f"{inline[0].lstrip('.')} holds a literal secret; use {{secret:/path/to/file}}"
            )
        return self


class Step(Model):
    name: StepName
    request: Request
    extract: dict[VarName, Extract] = {}
    expect: Expect = Expect()
    #: Off by default, so that ``expect.status`` sees a 302 itself.
    follow_redirects: bool = False
    #: Run even when an earlier step failed: the clean-up steps at the end of a journey.
    always: bool = False


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, str):
        return PLACEHOLDER.findall(value)
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _placeholders(k) + _placeholders(v)]
    if isinstance(value, list):
        return [n for v in value for n in _placeholders(v)]
    return []


def _inline_secrets(value: Any, path: str) -> list[str]:
    """Paths of password-like keys whose value is a literal (no placeholder)."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}"
            if (
                isinstance(v, str)
                and _SECRET_KEY.search(str(k))
                and v
                and not PLACEHOLDER.search(v)
            ):
                out.append(where)
            else:
                out += _inline_secrets(v, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _inline_secrets(v, f"{path}[{i}]")
    return out


class Journey(Model):
    """A scripted user journey: ordered HTTP steps sharing cookies and extracted values; run by
    the exporter every ``interval`` seconds and by ``sscp-ops journeys run`` (docs/journeys.md)."""

    name: Name
    #: Seconds between two runs in the exporter (each journey has its own schedule).
    interval: Annotated[float, Field(ge=10, le=86400)] = 300.0
    #: Also export the result as ``sla_probe_success{target=<name>}``, so that the journey
    #: counts in the availability evidence like a probe target (docs/sla.md).
    availability: bool = False
    tls: TlsConfig | None = None
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_validator("steps")
    @classmethod
    def _steps_consistent(cls, steps: list[Step]) -> list[Step]:
        unique_names(steps, "step")
        known = set(BUILTINS)
        for step in steps:
            req = step.request
            parts = {
                "url": req.url,
                "headers": req.headers,
                "form": req.form,
                "json": req.json_body,
            }
            for name in _placeholders(list(parts.values())):
                if not name.startswith("secret:") and name not in known:
                    raise ValueError(
                        f"step {step.name!r} uses {{{name}}}, which no earlier step extracts"
                    )
            known |= set(step.extract)
        return steps


def _unique(items: list[Journey]) -> list[Journey]:
    return unique_names(items, "journey")


Journeys = Annotated[list[Journey], AfterValidator(_unique)]
