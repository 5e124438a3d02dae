"""The Chinese web UI in Debian's headless Chromium (driven with selenium + chromedriver):
login, the board with SLA countdowns, the ticket page with acknowledge / comment / resolve."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid

import pytest
from fx_webhook import AM_TOKEN, payload
from fx_webhook import bearer as auth
from helpers import require_binary

pytestmark = pytest.mark.slow

CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def browser():
    chromium = require_binary("/usr/bin/chromium")
    driver_bin = require_binary("/usr/bin/chromedriver", "chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sscp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def live_app(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def navigating(browser, action) -> None:
    """Run ``action`` (a click, back) and wait until a new page replaced the current one."""
    from selenium.webdriver.support.ui import WebDriverWait

    # Mark the current document; the new one does not carry the mark. (Waiting for the old
    # <html> to go stale is flaky here: chromedriver sometimes answers "Node ... does not
    # belong to the document" instead of a stale-element error while the page is replaced.)
    # A fresh mark per navigation, so a page restored from the back-forward cache (which
    # still carries the mark of an earlier navigation) also counts as a new page.
    mark = uuid.uuid4().hex
    browser.execute_script("window.__sscpPage = arguments[0];", mark)
    action()
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script(
            "return window.__sscpPage !== arguments[0] && document.readyState === 'complete';",
            mark,
        )
    )


def submit(browser, element_id: str) -> None:
    navigating(browser, browser.find_element("id", element_id).click)


def login(browser, base, token):
    browser.get(f"{base}/")
    assert "/login" in browser.current_url
    browser.find_element("id", "token").send_keys(token)
    submit(browser, "login")


def test_operator_acknowledges_comments_and_resolves(browser, live_app, client, tokens, services):
    client.post("/api/v1/alerts", json=payload("firing-hostdown.json"), headers=auth(AM_TOKEN))
    login(browser, live_app, "sscp_wrong")
    assert browser.find_element("id", "error").text == "令牌无效"
    browser.find_element("id", "token").send_keys(tokens["operator"])
    submit(browser, "login")
    row = browser.find_element("css selector", "#active tr.ticket")
    assert row.get_attribute("data-id") == "1"
    assert row.find_element("class name", "status").text == "待响应"
    from selenium.webdriver.support.ui import WebDriverWait

    cell = row.find_element("css selector", ".countdown.response")
    # the JS countdown ran (it may take a moment on a loaded machine)
    WebDriverWait(browser, 10).until(lambda _: cell.text.startswith("剩余 "))
    countdown = cell.text
    assert countdown.startswith("剩余 ") and "分" in countdown
    assert "13812345678" not in browser.page_source
    navigating(browser, row.find_element("link text", "#1").click)
    assert browser.find_element("tag name", "h2").text.startswith("工单 #1")
    submit(browser, "ack")
    assert browser.find_element("id", "status").text == "处理中"
    assert browser.find_element("id", "assignee").text == "test-operator"
    browser.find_element("id", "comment-note").send_keys("已登录服务器排查，联系 13912345678")
    submit(browser, "comment")
    comments = browser.find_element("id", "comments").text
    assert "已登录服务器排查" in comments and "139****5678" in comments
    submit(browser, "resolve")  # without a note: refused
    assert "处理说明" in browser.page_source
    navigating(browser, browser.back)
    browser.find_element("id", "resolve-note").send_keys("重启 nginx 后恢复")
    submit(browser, "resolve")
    assert browser.find_element("id", "status").text == "已解决"
    t = services.store.get_ticket(1)
    assert t["status"] == "resolved" and t["resolution_source"] == "manual"
    assert [a["action"] for a in t["audit"]] == ["create", "ack", "comment", "resolve"]
    assert {a["actor"] for a in t["audit"][1:]} == {"token:test-operator"}


def test_viewer_sees_no_actions(browser, live_app, client, tokens):
    client.post("/api/v1/alerts", json=payload("firing-hostdown.json"), headers=auth(AM_TOKEN))
    login(browser, live_app, tokens["viewer"])
    assert browser.find_element("id", "whoami").text == "test-viewer（viewer）"
    browser.get(f"{live_app}/tickets/1")
    assert browser.find_elements("id", "actions") == []
    submit(browser, "logout")
    assert "/login" in browser.current_url
