"""The server-rendered web UI (Chinese): login, ticket board with SLA countdowns, ticket page,
and the acknowledge page reached from the link in an SMS."""

from __future__ import annotations

import hmac
import secrets
from functools import wraps

from flask import (
    Blueprint,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from webhook.auth import RANK
from webhook.services import current
from webhook.store import Conflict, NotFound
from webhook.views import notice_json, ticket_json

bp = Blueprint("ui", __name__, template_folder="templates")

STATUS_CN = {"open": "待响应", "acknowledged": "处理中", "resolved": "已解决", "closed": "已关闭"}
SEVERITY_CN = {"critical": "严重", "warning": "警告", "info": "提示"}
KIND_CN = {"incident": "事件", "vulnerability": "漏洞"}


@bp.app_context_processor
def _names():
    return {
        "STATUS_CN": STATUS_CN,
        "SEVERITY_CN": SEVERITY_CN,
        "KIND_CN": KIND_CN,
        "user": session.get("name"),
        "role": session.get("role"),
        "csrf": _csrf_token(),
    }


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode()):
        abort(400, "表单已过期，请刷新页面后重试")


def login_required(role: str = "viewer"):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if "token_id" not in session:
                return redirect(url_for("ui.login", next=request.path))
            if RANK[session["role"]] < RANK[role]:
                abort(403, "权限不足")
            return view(*args, **kwargs)

        return wrapped

    return decorator


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        _check_csrf()
        info = current().store.verify_token(request.form.get("token", "").strip())
        if info is None:
            error = "令牌无效"
        else:
            session.clear()
            session.update(token_id=info.id, name=info.name, role=info.role)
            target = request.args.get("next", "/")
            return redirect(
                target if target.startswith("/") and not target.startswith("//") else "/"
            )
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout():
    _check_csrf()
    session.clear()
    return redirect(url_for("ui.login"))


def _view(t: dict) -> dict:
    cfg = current().config
    return ticket_json(t, cfg.response_sla, cfg.resolution_sla, current().store.clock())


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
    _check_csrf()
    store = current().store
    actor = f"token:{session['name']}"
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
                tid, action, actor, note, assignee=session["name"], planner=current().planner
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
