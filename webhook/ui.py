"""The server-rendered web UI (Chinese): login, ticket board with SLA countdowns, ticket page,
and the acknowledge page reached from the link in an SMS."""

from __future__ import annotations

import logging
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf

from sscp_ops.masking import reveal_controls
from webhook.auth import RANK, session_token
from webhook.limits import client_address
from webhook.services import current
from webhook.store import Conflict, NotFound
from webhook.views import TEXT_FIELDS, notice_json, ticket_json

log = logging.getLogger("webhook.ui")

bp = Blueprint("ui", __name__, template_folder="templates")

STATUS_CN = {"open": "待响应", "acknowledged": "处理中", "resolved": "已解决", "closed": "已关闭"}
SEVERITY_CN = {"critical": "严重", "warning": "警告", "info": "提示"}
KIND_CN = {"incident": "事件", "vulnerability": "漏洞"}


@bp.app_context_processor
def _names():
    info = session_token()
    return {
        "STATUS_CN": STATUS_CN,
        "SEVERITY_CN": SEVERITY_CN,
        "KIND_CN": KIND_CN,
        "user": info.name if info else None,
        "role": info.role if info else None,
        # the session's CSRF token (Flask-WTF), in every form and in <meta name="csrf-token">
        "csrf": generate_csrf(),
    }


def login_required(role: str = "viewer"):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            info = session_token()
            if info is None:
                return redirect(url_for("ui.login", next=request.path))
            if RANK[info.role] < RANK[role]:
                abort(403, "权限不足")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path of this site, else ``/``. Refused: anything a
    browser could read as another host (``//x``, ``/\\x``, ``/\t/x`` once the browser drops
    the tab, ``\\x``), a scheme or userinfo, control characters and whitespace."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if "\\" in target or not target.isprintable() or any(c.isspace() for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with an API token: a session on the server (ended by logout, the token's
    revocation or ``webhook.session_lifetime``), a new CSRF token for it, audited; a refused
    token is audited too and counts against the limits of webhook.limits."""
    error = None
    if request.method == "POST":
        store = current().store
        info = store.verify_token(request.form.get("token", "").strip())
        if info is None:
            error = "令牌无效"
            store.login_failed(client_address())
            log.warning("login refused", extra={"kv": {"client": client_address()}})
        else:
            sid = store.open_session(info, current().config.session_lifetime, client_address())
            session.clear()
            session.permanent = True
            session["sid"] = sid
            g.pop("csrf", None)
            generate_csrf()  # one per session, set at login (the login page's is dropped)
            g.session_token = info
            return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout():
    info = session_token()
    if info is not None:
        current().store.close_session(session["sid"], info.actor, client_address())
    session.clear()
    return redirect(url_for("ui.login"))


def _view(t: dict) -> dict:
    """A ticket as the UI shows it: control and bidi characters written out (``\\u202e``)."""
    cfg = current().config
    out = ticket_json(
        t,
        cfg.response_sla,
        cfg.resolution_sla,
        current().store.clock(),
        t["kind"] == "incident" and cfg.faults.is_fault(t["alertname"], t["severity"]),
    )
    for f in TEXT_FIELDS:
        if out[f] is not None:
            out[f] = reveal_controls(out[f])
    out["labels"] = {reveal_controls(k): reveal_controls(v) for k, v in out["labels"].items()}
    for c in out.get("comments", ()):
        c["body"] = reveal_controls(c["body"])
        c["author"] = reveal_controls(c["author"])
    return out


@bp.get("/")
@login_required()
def board():
    store = current().store
    active = [_view(t) for t in store.list_tickets(("open", "acknowledged"), limit=500)]
    done = [_view(t) for t in store.list_tickets(("resolved", "closed"), limit=50)]
    return render_template("board.html", active=active, done=done)


@bp.get("/tickets/<int:tid>")
@login_required()
def ticket(tid: int):
    store = current().store
    try:
        t = store.get_ticket(tid)
    except NotFound:
        abort(404, "工单不存在")
    notices = [notice_json(n) for n in store.outbox_rows(tid)]
    return render_template("ticket.html", t=_view(t), notices=notices)


@bp.post("/tickets/<int:tid>/<action>")
@login_required("operator")
def act(tid: int, action: str):
    store = current().store
    info = session_token()
    actor = info.actor
    note = request.form.get("note", "").strip()
    try:
        if action == "comment":
            if not note:
                abort(400, "请填写备注")
            store.add_comment(tid, actor, note)
        elif action in ("ack", "resolve", "close"):
            if action == "resolve" and not note:
                abort(400, "手工解决需要填写处理说明")
            store.transition(
                tid, action, actor, note, assignee=info.name, planner=current().planner
            )
        else:
            abort(404)
    except NotFound:
        abort(404, "工单不存在")
    except Conflict:
        abort(409, "工单状态已变化，请刷新")
    return redirect(url_for("ui.ticket", tid=tid))


@bp.route("/a/<token>", methods=["GET", "POST"])
def ack_link(token: str):
    """The link in an SMS: GET shows a confirmation (link previews must not acknowledge)."""
    store = current().store
    if request.method == "GET":
        tid = store.ack_link_ticket(token)
        if tid is None:
            return render_template("ack.html", state="invalid"), 404
        return render_template("ack.html", state="confirm", t=_view(store.get_ticket(tid)))
    try:
        t = store.use_ack_link(token)
    except NotFound:
        return render_template("ack.html", state="invalid"), 404
    return render_template("ack.html", state="done", t=_view(t))
