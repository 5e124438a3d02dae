"""Seeding the report's real sources: tickets through the real webhook API (alerts posted as
Alertmanager posts them, ack / resolve / vulnerabilities as an operator), security events through
the real logs pipeline (sshd auth.log read by the logs collector into the event store)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import requests
from fx_webhook import AM_TOKEN, Clock

Z = "%Y-%m-%dT%H:%M:%S.000Z"


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(Z)


class Seeder:
    """Drives the live webhook at chosen moments: the store's clock is set to each moment
    before the request, so ``created_at`` / ``acknowledged_at`` are what the API records."""

    def __init__(self, url: str, clock: Clock, operator_token: str) -> None:
        self.url = url
        self.clock = clock
        self.op = {"Authorization": f"Bearer {operator_token}"}
        self.am = {"Authorization": f"Bearer {AM_TOKEN}"}

    def at(self, moment: datetime) -> Seeder:
        self.clock.now = moment.astimezone(UTC)
        return self

    def _alert(self, name: str, target: str, starts: datetime, ends: datetime | None) -> dict:
        labels = {"alertname": name, "target": target, "severity": "critical"}
        fp = hashlib.sha256(f"{name}/{target}".encode()).hexdigest()[:16]
        alert = {
            "status": "resolved" if ends else "firing",
            "labels": labels,
            "annotations": {"summary": f"{target} 故障，值班电话 13812345678"},
            "startsAt": utc(starts),
            "endsAt": utc(ends) if ends else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph",
            "fingerprint": fp,
        }
        return {
            "receiver": "sscp-ops.tickets",
            "status": alert["status"],
            "alerts": [alert],
            "groupLabels": {"alertname": name},
            "commonLabels": labels,
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager.local",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{name}"}}',
            "truncatedAlerts": 0,
        }

    def fire(self, name: str, target: str, at: datetime) -> int:
        """Alertmanager posts a firing alert (started 2 min before it reaches us)."""
        self.at(at)
        body = self._alert(name, target, at - timedelta(minutes=2), None)
        resp = requests.post(f"{self.url}/api/v1/alerts", json=body, headers=self.am, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["outcomes"] == {"created": 1}, resp.json()
        newest = requests.get(
            f"{self.url}/api/v1/tickets",
            params={"kind": "incident", "limit": 1},
            headers=self.op,
            timeout=10,
        ).json()["tickets"][0]
        return int(newest["id"])

    def clear(self, name: str, target: str, fired: datetime, at: datetime) -> None:
        """Alertmanager posts the resolved alert (``endsAt`` = ``at``)."""
        self.at(at)
        body = self._alert(name, target, fired - timedelta(minutes=2), at)
        resp = requests.post(f"{self.url}/api/v1/alerts", json=body, headers=self.am, timeout=10)
        assert resp.status_code == 200 and resp.json()["outcomes"] == {"resolved": 1}, resp.text

    def ack(self, tid: int, at: datetime) -> None:
        self.at(at)
        resp = requests.post(
            f"{self.url}/api/v1/tickets/{tid}/ack", json={}, headers=self.op, timeout=10
        )
        assert resp.status_code == 200, resp.text

    def resolve(self, tid: int, at: datetime) -> None:
        self.at(at)
        resp = requests.post(
            f"{self.url}/api/v1/tickets/{tid}/resolve",
            json={"note": "更换磁盘后恢复"},
            headers=self.op,
            timeout=10,
        )
        assert resp.status_code == 200, resp.text

    def vuln(self, key: str, risk: str, found: datetime) -> int:
        self.at(found)
        resp = requests.post(
            f"{self.url}/api/v1/vulnerabilities",
            json={
                "external_key": key,
                "risk": risk,
                "title": f"{key} 漏洞",
                "target": "https://www.example.gov.cn/",
                "found_at": utc(found),
            },
            headers=self.op,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def fix(self, key: str, fixed: datetime) -> None:
        self.at(fixed + timedelta(minutes=1))
        resp = requests.patch(
            f"{self.url}/api/v1/vulnerabilities/{key}",
            json={"status": "resolved", "fixed_at": utc(fixed), "note": "复扫未发现"},
            headers=self.op,
            timeout=10,
        )
        assert resp.status_code == 200, resp.text

    def change(self, title: str, planned: datetime) -> None:
        self.at(planned - timedelta(days=1))
        resp = requests.post(
            f"{self.url}/api/v1/changes",
            json={
                "title": title,
                "reason": "问题整改",
                "planned_start": utc(planned),
                "planned_end": utc(planned + timedelta(hours=1)),
                "result": "success",
            },
            headers=self.op,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text


def sshd_burst(moment: datetime, ip: str = "203.0.113.7", failures: int = 4) -> str:
    """auth.log lines: ``failures`` failed passwords then a success, all at ``moment`` (local)."""
    stamp = moment.astimezone().strftime("%b %e %H:%M:%S")
    out = [
        f"{stamp} web1 sshd[900{i}]: Failed password for invalid user admin from {ip} "
        f"port {40000 + i} ssh2"
        for i in range(failures)
    ]
    out.append(f"{stamp} web1 sshd[9010]: Accepted password for admin from {ip} port 1 ssh2")
    return "\n".join(out) + "\n"
