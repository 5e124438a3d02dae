"""A small platform for the journey tests: a Flask app served by werkzeug in a thread, behind a
real Nginx (``nginx_server``), with what a supervisor's journey touches:

- ``GET /login``: a form with a CSRF token (hidden ``csrf`` input), fields ``user``, ``password``;
  ``POST /login``: 302 to ``/`` when token and password match, else 200 with an error.
- ``GET /search?q=``: market entities (``td.entity``) for a logged-in user, else 302 to /login.
- ``GET /inspections/new``, ``POST /inspections``: an inspection form (its own CSRF token);
  302 to ``/inspections/<id>``.
- ``GET /api/v1/inspections/<id>``: the record as JSON ``{"id", "entity": {"name"}, "result",
  "note"}``; ``DELETE`` removes it (204; needs ``X-CSRF-Token``);
  ``GET /api/v1/inspections``: every record (the test counts the leftovers).

``site.upgrade(*breaks)`` switches on a deliberately broken upgrade: ``renamed_field`` (the
login form's ``user`` is now ``username``), ``slow_search`` (the query takes 2.3 s) and
``json_field_removed`` (the JSON answer lost ``result``). ``site.upgrade()`` undoes them.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fx_servers import Nginx, nginx_server

PASSWORD = "probe-Pa55-" + secrets.token_hex(4)
SLOW_SECONDS = 2.3
ENTITIES = ["测试企业（甲）", "测试企业（乙）", "某某餐饮有限公司"]
BREAKS = frozenset({"renamed_field", "slow_search", "json_field_removed"})


@dataclass
class PlatformState:
    breaks: set[str] = field(default_factory=set)
    inspections: dict[int, dict] = field(default_factory=dict)
    next_id: int = 1
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_platform(state: PlatformState):
    from flask import Flask, abort, jsonify, redirect, request, session

    app = Flask("platform")
    app.secret_key = secrets.token_bytes(16)

    @app.before_request
    def count() -> None:
        with state.lock:
            state.requests += 1

    def csrf() -> str:
        session.setdefault("csrf", secrets.token_urlsafe(16))
        return session["csrf"]

    def page(body: str) -> str:
        return f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'

    @app.get("/login")
    def login_form():
        user = "username" if "renamed_field" in state.breaks else "user"
        return page(
            '<form method="post" action="/login">'
            f'<input type="hidden" name="csrf" value="{csrf()}">'
            f'<input name="{user}"><input type="password" name="password">'
            "<button>登录</button></form>"
        )

    @app.post("/login")
    def login():
        user_field = "username" if "renamed_field" in state.breaks else "user"
        form = request.form
        if (
            form.get("csrf") != session.get("csrf")
            or form.get(user_field) != "probe"
            or form.get("password") != PASSWORD
        ):
            return page('<p class="error">用户名或密码错误</p>'), 200
        session["user"] = "probe"
        return redirect("/", 302)

    @app.get("/")
    def home():
        return page("<h1>智慧监管综合指挥平台</h1>")

    @app.get("/search")
    def search():
        if "user" not in session:
            return redirect("/login", 302)
        if "slow_search" in state.breaks:
            time.sleep(SLOW_SECONDS)
        q = request.args.get("q", "")
        rows = "".join(f'<tr><td class="entity">{e}</td></tr>' for e in ENTITIES if q in e)
        return page(f"<table>{rows}</table>")

    @app.get("/inspections/new")
    def inspection_form():
        if "user" not in session:
            return redirect("/login", 302)
        return page(
            '<form method="post" action="/inspections">'
            f'<input type="hidden" name="csrf" value="{csrf()}">'
            '<input name="entity"><select name="result"><option>合格</option></select>'
            '<textarea name="note"></textarea></form>'
        )

    @app.post("/inspections")
    def submit():
        if "user" not in session or request.form.get("csrf") != session.get("csrf"):
            abort(403)
        with state.lock:
            iid = state.next_id
            state.next_id += 1
            state.inspections[iid] = {
                "id": iid,
                "entity": {"name": request.form["entity"]},
                "result": request.form["result"],
                "note": request.form.get("note", ""),
            }
        return redirect(f"/inspections/{iid}", 302)

    @app.get("/api/v1/inspections/<int:iid>")
    def inspection(iid: int):
        if "user" not in session:
            abort(401)
        item = dict(state.inspections.get(iid) or abort(404))
        if "json_field_removed" in state.breaks:
            item.pop("result")
        return jsonify(item)

    @app.get("/api/v1/inspections")
    def inspections():
        return jsonify(inspections=list(state.inspections.values()))

    @app.delete("/api/v1/inspections/<int:iid>")
    def delete(iid: int):
        if "user" not in session or request.headers.get("X-CSRF-Token") != session.get("csrf"):
            abort(403)
        with state.lock:
            state.inspections.pop(iid, None) or abort(404)
        return "", 204

    return app


@dataclass
class Platform:
    nginx: Nginx
    state: PlatformState

    @property
    def base(self) -> str:
        return self.nginx.url("").rstrip("/")

    def upgrade(self, *breaks: str) -> None:
        assert set(breaks) <= BREAKS, breaks
        self.state.breaks = set(breaks)

    def leftovers(self) -> list[dict]:
        """Inspections the journeys created and did not clean up."""
        return [i for i in self.state.inspections.values() if i["note"].startswith("sscp-probe-")]


def journey_yaml(base: str, password_file: Path, name: str = "inspection-form", **extra) -> str:
    """The journey of the issue against this platform (as YAML text under ``journeys:``);
    ``extra`` adds journey keys (``interval=300``, ``availability="true"``)."""
    more = "".join(f"    {k}: {v}\n" for k, v in {"interval": 10, **extra}.items())
    return f"""\
  - name: {name}
{more}    steps:
      - name: 登录页
        request: {{method: GET, url: "{base}/login"}}
        extract: {{csrf: {{regex: 'name="csrf" value="([^"]+)"'}}}}
      - name: 登录
        request: {{method: POST, url: "{base}/login",
                  form: {{user: probe, password: "{{secret:{password_file}}}", csrf: "{{csrf}}"}}}}
        expect: {{status: 302}}
      - name: 企业查询
        request: {{method: GET, url: "{base}/search?q=测试企业"}}
        expect: {{status: 200, contains: "测试企业", css: "td.entity", max_seconds: 2}}
      - name: 检查表单
        request: {{method: GET, url: "{base}/inspections/new"}}
        extract: {{form_csrf: {{css: 'input[name=csrf]'}}}}
      - name: 提交检查
        request: {{method: POST, url: "{base}/inspections",
                  form: {{entity: 测试企业（甲）, result: 合格, note: "{{run_id}}",
                         csrf: "{{form_csrf}}"}}}}
        expect: {{status: 302}}
        extract: {{inspection: {{header: Location, regex: '/inspections/(\\d+)'}}}}
      - name: 数据接口
        request: {{method: GET, url: "{base}/api/v1/inspections/{{inspection}}"}}
        expect: {{status: 200, jsonpath: {{"$.entity.name": 测试企业（甲）, "$.result": 合格}}}}
      - name: 清理测试数据
        always: true
        request: {{method: DELETE, url: "{base}/api/v1/inspections/{{inspection}}",
                  headers: {{X-CSRF-Token: "{{form_csrf}}"}}}}
        expect: {{status: 204}}
"""


@pytest.fixture(scope="session")
def platform_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    from werkzeug.serving import make_server

    state = PlatformState()
    quiet = logging.getLogger("werkzeug")
    quiet.setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, create_platform(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy = f"""\
location / {{
    proxy_pass http://127.0.0.1:{server.server_port};
    proxy_set_header Host $http_host;
    proxy_read_timeout 30s;
}}"""
    try:
        with nginx_server(tmp_path_factory.mktemp("platform-nginx"), proxy) as nginx:
            yield Platform(nginx, state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def platform(platform_server: Platform) -> Iterator[Platform]:
    """The platform, healthy (no broken upgrade) and with no records, for one test."""
    platform_server.upgrade()
    state = platform_server.state
    with state.lock:
        state.inspections.clear()
        state.next_id, state.requests = 1, 0
    yield platform_server
    platform_server.upgrade()


@pytest.fixture
def probe_password(tmp_path: Path) -> Path:
    path = tmp_path / "probe.pass"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path
