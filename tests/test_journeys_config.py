"""The ``journeys:`` section: the issue's format loads as written; a bad file fails at load
time naming the file, line, key path and what was expected."""

from __future__ import annotations

import pytest

from sscp_ops.config import ConfigError, load_config

ISSUE_EXAMPLE = """\
journeys:
  - name: inspection-form
    interval: 300                      # seconds between runs as a probe
    steps:
      - name: 登录页
        request: {method: GET, url: "https://platform/login"}
        extract: {csrf: {regex: 'name="csrf" value="([^"]+)"'}}   # also css:, jsonpath:
      - name: 登录
        request: {method: POST, url: "https://platform/login",
                  form: {user: probe, password: "{secret:/etc/sscp-ops/probe.pass}", csrf: "{csrf}"}}
        expect: {status: 302}
      - name: 企业查询
        request: {method: GET, url: "https://platform/search?q=测试企业"}
        expect: {status: 200, contains: "测试企业", max_seconds: 2}   # also css:, jsonpath: {path: value}
"""  # noqa: E501 - the issue's text, verbatim


def test_the_issue_example_loads_as_written(write_config) -> None:
    journey = load_config(write_config(ISSUE_EXAMPLE)).journeys[0]
    assert (journey.name, journey.interval, journey.availability) == ("inspection-form", 300, False)
    login_page, login, search = journey.steps
    assert login_page.extract["csrf"].regex == 'name="csrf" value="([^"]+)"'
    assert login.request.form == {
        "user": "probe",
        "password": "{secret:/etc/sscp-ops/probe.pass}",
        "csrf": "{csrf}",
    }
    assert login.expect.status == [302] and login.expect.max_seconds == 2  # the default
    assert not login.follow_redirects  # unless the step says so
    assert search.expect.contains == "测试企业"


def _step(body: str) -> str:
    return f"journeys:\n  - name: j\n    steps:\n      - name: a\n{body}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _step('        request: {url: "http://x/{csrf}"}\n'),
            ":3: journeys[0].steps: step 'a' uses {csrf}, which no earlier step extracts",
        ),
        (
            _step("        request: {url: \"http://x/\"}\n        extract: {t: {regex: '(['}}\n"),
            ":6: journeys[0].steps[0].extract.t.regex: invalid regex '([': "
            "unterminated character set at position 1",
        ),
        (
            _step("        request: {url: \"http://x/\"}\n        expect: {css: 'td[['}\n"),
            ":6: journeys[0].steps[0].expect.css: invalid css 'td[[': "
            "Malformed attribute selector at position 2",
        ),
        (
            _step(
                "        request: {url: \"http://x/\"}\n        expect: {jsonpath: {'$.[[': 1}}\n"
            ),
            "invalid jsonpath '$.[[': Parse error at 1:3",
        ),
        (
            _step('        request: {method: POST, url: "http://x/", form: {password: hunter2}}\n'),
            ":5: journeys[0].steps[0].request: form.password holds a literal secret; "
            "use {secret:/path/to/file}",
        ),
        (
            _step('        request: {url: "http://x/", headers: {Authorization: "Bearer abc"}}\n'),
            "request: headers.Authorization holds a literal secret",
        ),
        (
            _step('        request: {url: "http://x/{secret:probe.pass}"}\n'),
            ":5: journeys[0].steps[0].request: {secret:probe.pass} needs an absolute path",
        ),
        (
            _step('        request: {url: "http://x/", form: {a: b}, json: {a: 1}}\n'),
            ":5: journeys[0].steps[0].request: give form or json, not both",
        ),
        (
            _step('        request: {url: "http://x/"}\n        expect: {status: 700}\n'),
            ":6: journeys[0].steps[0].expect.status[0]: input should be less than or equal "
            "to 599, got 700",
        ),
        (
            _step(
                '        request: {url: "http://x/"}\n        extract: {v: {regex: a, css: b}}\n'
            ),
            ":6: journeys[0].steps[0].extract.v: give exactly one of regex, css, jsonpath",
        ),
        (
            _step('        request: {url: "ftp://x/"}\n'),
            ":5: journeys[0].steps[0].request.url: string should match pattern",
        ),
        (
            "journeys:\n  - {name: j, steps: [{name: a, request: {url: 'http://x/'}},"
            " {name: a, request: {url: 'http://x/'}}]}\n",
            ":2: journeys[0].steps: duplicate step name 'a'",
        ),
        (
            "journeys:\n  - {name: j, steps: []}\n",
            ":2: journeys[0].steps: list should have at least 1 item",
        ),
        (
            "journeys:\n  - {name: j, interval: 1, steps: [{name: a, request: {url: 'http://x/'}}]}\n",
            ":2: journeys[0].interval: input should be greater than or equal to 10, got 1",
        ),
        (
            "targets: {probe: [{name: j, url: 'http://x/'}]}\njourneys:\n"
            "  - {name: j, availability: true, steps: [{name: a, request: {url: 'http://x/'}}]}\n",
            "journeys[0].name: 'j' is also a targets.probe name",
        ),
    ],
)
def test_a_bad_journey_fails_at_load_naming_file_and_key(write_config, text, message) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)
