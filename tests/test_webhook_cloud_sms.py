"""Aliyun and Tencent Cloud SMS backends through their official SDKs, against a local fake of
each provider's API that checks the signed request (action, credential, our notice id as
OutId / SessionContext, the text in the template variable, no link) and answers like it."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fx_webhook import PHONES, payload
from helpers import missing

from webhook.events import parse_alertmanager
from webhook.worker import Worker


class FakeProvider:
    def __init__(self, answer) -> None:
        self.calls: list[dict] = []
        self.answer = answer
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                call = {
                    "path": self.path,
                    "query": dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": raw,
                }
                fake.calls.append(call)
                out = json.dumps(fake.answer(call)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    made = []

    def make(answer):
        made.append(FakeProvider(answer))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.fixture
def keys(tmp_path):
    (tmp_path / "id").write_text("LTAI-test-id\n")
    (tmp_path / "secret").write_text("test-secret\n")
    return {
        "access_key_id_file": str(tmp_path / "id"),
        "access_key_secret_file": str(tmp_path / "secret"),
    }


def need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        missing(f"Python package for {module}")


def aliyun_answer(codes):
    def answer(call):
        return {
            "Code": codes.pop(0) if codes else "OK",
            "Message": "x",
            "BizId": "b",
            "RequestId": "r",
        }

    return answer


def test_aliyun_backend(webhook_config, make_services, provider, keys):
    need("alibabacloud_dysmsapi20170525")
    codes = ["isv.BUSINESS_LIMIT_CONTROL"]
    fake = provider(aliyun_answer(codes))
    sms = {
        "backend": "aliyun",
        "limits": [],
        "aliyun": {
            **keys,
            "sign_name": "某市市场监管",
            "template": "SMS_123",
            "endpoint": fake.endpoint,
            "protocol": "http",
        },
    }
    svc = make_services(webhook_config(sms=sms))
    svc.store.ingest_many(parse_alertmanager(payload("firing-hostdown.json")), svc.planner)
    worker = Worker(svc.store, svc.config)
    worker.deliver_due()
    rows = svc.store.outbox_rows()
    assert sorted(r["status"] for r in rows) == ["pending", "sent"]  # flow control: retried
    assert [r["last_error"] for r in rows if r["status"] == "pending"] == [
        "aliyun isv.BUSINESS_LIMIT_CONTROL"
    ]
    call = fake.calls[-1]
    assert call["headers"]["x-acs-action"] == "SendSms"
    assert call["headers"]["authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAI-test-id")
    q = call["query"]
    assert q["OutId"] in {str(r["id"]) for r in rows}
    assert q["PhoneNumbers"] in PHONES and q["SignName"] == "某市市场监管"
    text = json.loads(q["TemplateParam"])["content"]
    assert text.startswith("【运维新告警】严重 工单1 主机 web1 无法访问") and "http" not in text


def test_aliyun_refusal_is_permanent(webhook_config, make_services, provider, keys):
    need("alibabacloud_dysmsapi20170525")
    fake = provider(aliyun_answer(["isv.MOBILE_NUMBER_ILLEGAL"] * 2))
    sms = {
        "backend": "aliyun",
        "limits": [],
        "aliyun": {
            **keys,
            "sign_name": "s",
            "template": "SMS_1",
            "endpoint": fake.endpoint,
            "protocol": "http",
        },
    }
    svc = make_services(webhook_config(sms=sms))
    svc.store.ingest_many(parse_alertmanager(payload("firing-hostdown.json")), svc.planner)
    Worker(svc.store, svc.config).deliver_due()
    assert {r["status"] for r in svc.store.outbox_rows()} == {"failed"}


def test_tencent_backend(webhook_config, make_services, provider, keys):
    need("tencentcloud.sms.v20210111")

    def answer(call):
        body = json.loads(call["body"])
        return {
            "Response": {
                "RequestId": "r",
                "SendStatusSet": [
                    {
                        "Code": "Ok",
                        "Message": "send success",
                        "SerialNo": "s",
                        "Fee": 1,
                        "PhoneNumber": body["PhoneNumberSet"][0],
                        "SessionContext": body["SessionContext"],
                        "IsoCode": "CN",
                    }
                ],
            }
        }

    fake = provider(answer)
    sms = {
        "backend": "tencent",
        "limits": [],
        "tencent": {
            **keys,
            "sign_name": "某市市场监管",
            "template": "1234567",
            "sdk_app_id": "1400000000",
            "endpoint": fake.endpoint,
            "protocol": "http",
        },
    }
    svc = make_services(webhook_config(sms=sms))
    svc.store.ingest_many(parse_alertmanager(payload("firing-hostdown.json")), svc.planner)
    Worker(svc.store, svc.config).deliver_due()
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"sent"}
    assert len(fake.calls) == 2
    for call in fake.calls:
        assert call["headers"]["x-tc-action"] == "SendSms"
        assert call["headers"]["authorization"].startswith(
            "TC3-HMAC-SHA256 Credential=LTAI-test-id/"
        )
    bodies = [json.loads(c["body"]) for c in fake.calls]
    assert sorted(b["SessionContext"] for b in bodies) == sorted(str(r["id"]) for r in rows)
    assert sorted(b["PhoneNumberSet"][0] for b in bodies) == sorted(f"+86{p}" for p in PHONES[:2])
    assert all(
        b["SmsSdkAppId"] == "1400000000" and "http" not in b["TemplateParamSet"][0] for b in bodies
    )


def test_cloud_backend_needs_its_section(webhook_config):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sms.backend tencent needs an sms.tencent"):
        webhook_config(sms={"backend": "tencent"})
