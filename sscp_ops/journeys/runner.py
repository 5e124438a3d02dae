"""Run one journey: its steps in order on one HTTP session (cookies persist within the run).

A failed step stops the journey; the steps after it are *skipped*, except those marked
``always: true`` (the clean-up steps that delete the test data the journey created), which
still run. The journey succeeds when no step failed. Each run has a ``run_id``
(``sscp-probe-<UTC time>-<random>``) usable as ``{run_id}`` to mark the data it creates.
"""

from __future__ import annotations

import logging
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import requests
from urllib3.exceptions import InsecureRequestWarning

from sscp_ops.config.base import TlsConfig
from sscp_ops.config.journeys import Journey, Step
from sscp_ops.journeys.checks import (
    Answer,
    MissingValue,
    StepFailure,
    check,
    extract,
    substitute,
)

log = logging.getLogger("journeys")

#: A body is read up to this size; the rest is not downloaded.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Marks the data a journey creates (docs/journeys.md: test data convention).
RUN_ID_PREFIX = "sscp-probe-"

StepStatus = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class StepResult:
    name: str
    status: StepStatus
    seconds: float = 0.0
    http_status: int = 0  # 0: no answer (not sent, or no HTTP answer came)
    reason: str = ""  # why it failed or was skipped; never holds a secret


@dataclass(frozen=True)
class JourneyResult:
    journey: str
    run_id: str
    started: float  # Unix time
    seconds: float
    steps: tuple[StepResult, ...]

    @property
    def success(self) -> bool:
        return all(s.status == "passed" for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        """The first step that failed (a skipped step follows a failed one)."""
        return next((s for s in self.steps if s.status == "failed"), None)


def new_run_id(now: datetime) -> str:
    return f"{RUN_ID_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def read_secret_file(path: str) -> str:
    """The content of a secret file without its trailing newline."""
    return Path(path).read_text(encoding="utf-8").rstrip("\r\n")


def _verify(tls: TlsConfig | None) -> bool | str:
    if tls is not None and tls.insecure_skip_verify:
        # The operator chose this for the journey; one warning per request is noise.
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        return False
    if tls is not None and tls.ca_file is not None:
        return str(tls.ca_file)
    return True


def new_session(tls: TlsConfig | None) -> requests.Session:
    """A fresh session per run: no cookie survives from one run to the next."""
    session = requests.Session()
    session.headers["User-Agent"] = "sscp-ops-journey"
    # Talk to the platform directly: no proxy, CA bundle or .netrc from the environment.
    session.trust_env = False
    session.verify = _verify(tls)
    if tls is not None and tls.cert_file is not None:
        session.cert = (
            (str(tls.cert_file), str(tls.key_file)) if tls.key_file else str(tls.cert_file)
        )
    return session


class _Secrets:
    """Reads ``{secret:/path}`` files and remembers their values to mask them in reasons."""

    def __init__(self, read: Callable[[str], str]) -> None:
        self._read = read
        self.values: list[str] = []

    def __call__(self, path: str) -> str:
        try:
            value = self._read(path)
        except OSError as exc:
            raise StepFailure(f"cannot read secret file {path}: {exc.strerror}") from None
        if value:
            self.values.append(value)
        return value

    def mask(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return text


def _send(
    session: requests.Session,
    step: Step,
    values: dict[str, str],
    secret: _Secrets,
    clock: Callable[[], float],
) -> Answer:
    req = step.request
    url = substitute(req.url, values, secret)
    headers = substitute(req.headers, values, secret)
    form = substitute(req.form, values, secret)
    body = substitute(req.json_body, values, secret)
    start = clock()
    try:
        with session.request(
            req.method,
            url,
            headers=headers,
            data=form,
            json=body,
            timeout=req.timeout,
            allow_redirects=step.follow_redirects,
            stream=True,
        ) as resp:
            content = bytearray()
            for chunk in resp.iter_content(65536):
                content += chunk
                if len(content) >= MAX_BODY_BYTES:
                    break
            return Answer(resp.status_code, resp.headers, bytes(content), clock() - start)
    except requests.RequestException as exc:
        took = clock() - start
        raise StepFailure(
            f"{req.method} failed after {took:.2f} s: {type(exc).__name__}: {exc}"
        ) from None


def run_journey(
    journey: Journey,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.perf_counter,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    read_secret: Callable[[str], str] = read_secret_file,
) -> JourneyResult:
    """Run every step of ``journey`` once and return what happened; never raises for a
    failing platform (that is the result)."""
    started = now()
    run_id = new_run_id(started)
    values = {"run_id": run_id}
    secret = _Secrets(read_secret)
    own = session is None
    session = session or new_session(journey.tls)
    results: list[StepResult] = []
    failed = False
    begin = clock()
    try:
        for step in journey.steps:
            if failed and not step.always:
                results.append(StepResult(step.name, "skipped", reason="an earlier step failed"))
                continue
            answer: Answer | None = None
            try:
                answer = _send(session, step, values, secret, clock)
                check(answer, step.expect)
                for name, spec in step.extract.items():
                    values[name] = extract(answer, name, spec)
            except StepFailure as exc:
                if failed and isinstance(exc, MissingValue):
                    # a clean-up step whose data was never created: nothing to clean up
                    results.append(StepResult(step.name, "skipped", reason=str(exc)))
                    continue
                failed = True
                results.append(
                    StepResult(
                        step.name,
                        "failed",
                        answer.seconds if answer else 0.0,
                        answer.status if answer else 0,
                        secret.mask(str(exc)),
                    )
                )
                continue
            results.append(StepResult(step.name, "passed", answer.seconds, answer.status))
    finally:
        if own:
            session.close()
    result = JourneyResult(
        journey.name, run_id, started.timestamp(), clock() - begin, tuple(results)
    )
    bad = result.failed_step
    if bad is not None:
        log.info(
            "journey failed",
            extra={"kv": {"journey": journey.name, "step": bad.name, "reason": bad.reason}},
        )
    return result
