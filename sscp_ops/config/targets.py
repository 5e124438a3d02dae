"""The ``targets:`` section: every monitored instance of every remote system.

Shape (kept stable: the tests and the operations manual rely on it)::

    targets:
      nginx:  [{name: web1, url: "http://127.0.0.1:8080/stub_status"}]
      tomcat: [{name: app1, url: "http://127.0.0.1:8081/manager/status?XML=true",
                user: monitor, password_file: /etc/sscp-ops/tomcat.pass}]
      redis:  [{name: cache1, address: "127.0.0.1:6379", password_file: /etc/sscp-ops/redis.pass}]
      mysql:  [{name: db1, address: "127.0.0.1:3306", user: exporter,
                password_file: /etc/sscp-ops/mysql.pass}]
      probe:  [{name: home, url: "https://example.gov.cn/", expect_status: 200, keyword: "..."}]
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from sscp_ops.config.base import Model, Name, PositiveSeconds, SecretRef, TlsConfig, unique_names

HttpUrl = Annotated[str, Field(pattern=r"^https?://\S+$")]
HostPort = Annotated[str, Field(pattern=r"^(\[[0-9a-fA-F:]+\]|[^:\s/]+):\d{1,5}$")]


class _Target(Model):
    name: Name
    timeout: PositiveSeconds = 3.0
    tls: TlsConfig | None = None


class NginxTarget(_Target):
    url: HttpUrl


class TomcatTarget(_Target, SecretRef):
    url: HttpUrl
    user: str | None = None


class RedisTarget(_Target, SecretRef):
    address: HostPort
    user: str | None = None


class MysqlTarget(_Target, SecretRef):
    address: HostPort
    user: str = "exporter"


class ProbeTarget(_Target):
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    keyword: str | None = None
    timeout: PositiveSeconds = 5.0
    #: Part of "the platform": the platform's availability (platform:sla_availability:up) is up
    #: only when every platform probe succeeds. False: watched and alerted, not counted.
    platform: bool = True


def _named(what: str):
    return AfterValidator(lambda items: unique_names(items, what))


class TargetsConfig(Model):
    """Monitored instances; every series of a remote system carries a ``target`` label."""

    nginx: Annotated[list[NginxTarget], _named("nginx target")] = []
    tomcat: Annotated[list[TomcatTarget], _named("tomcat target")] = []
    redis: Annotated[list[RedisTarget], _named("redis target")] = []
    mysql: Annotated[list[MysqlTarget], _named("mysql target")] = []
    probe: Annotated[list[ProbeTarget], _named("probe target")] = []
