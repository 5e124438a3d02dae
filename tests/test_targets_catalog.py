"""The catalog builds one collector per configured target, none without targets."""

from __future__ import annotations

from exporters.catalog import CATALOG, build_collectors, enabled_names
from exporters.mysql import MysqlCollector
from exporters.nginx import NginxCollector
from exporters.redis import RedisCollector
from exporters.tomcat import TomcatCollector
from sscp_ops.config import parse_config


def test_no_targets_no_collectors() -> None:
    local = "host: false, textfile: false, calendar: false"  # the local sources
    config = parse_config(f"exporter: {{collectors: {{{local}}}}}\n")
    assert build_collectors(config, enabled_names(config)) == []


def test_one_collector_per_target() -> None:
    config = parse_config(
        """
exporter: {collectors: {host: false, textfile: false, calendar: false}}
targets:
  nginx: [{name: web1, url: "http://127.0.0.1:8080/stub_status"},
          {name: web2, url: "http://127.0.0.1:8082/stub_status"}]
  tomcat: [{name: app1, url: "http://127.0.0.1:8081/manager/status?XML=true", user: monitor,
            password_file: /etc/sscp-ops/tomcat.pass}]
  redis: [{name: cache1, address: "127.0.0.1:6379", password_env: REDIS_PASS}]
  mysql: [{name: db1, address: "127.0.0.1:3306", user: exporter,
           password_file: /etc/sscp-ops/mysql.pass, timeout: 2}]
"""
    )
    collectors = build_collectors(config, enabled_names(config))
    got = [(type(c), c.name, c.target) for c in collectors]
    assert got == [
        (NginxCollector, "nginx", "web1"),
        (NginxCollector, "nginx", "web2"),
        (TomcatCollector, "tomcat", "app1"),
        (RedisCollector, "redis", "cache1"),
        (MysqlCollector, "mysql", "db1"),
    ]
    for collector in collectors:
        collector.close()  # nothing was opened: closing is harmless


def test_collectors_can_be_switched_off() -> None:
    config = parse_config(
        """
exporter: {collectors: {host: false, textfile: false, calendar: false, nginx: false}}
targets:
  nginx: [{name: web1, url: "http://127.0.0.1:8080/stub_status"}]
"""
    )
    assert build_collectors(config, enabled_names(config, {"nginx": False})) == []
    assert {"nginx", "tomcat", "redis", "mysql"} <= set(CATALOG)


def test_client_libraries_are_loaded_only_for_configured_targets() -> None:
    """redis and PyMySQL (~18 MiB of RSS) stay out of an exporter that has no such target."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from exporters.catalog import CATALOG, build_collectors\n"
        "from sscp_ops.config import parse_config\n"
        "config = parse_config(sys.argv[1])\n"
        "build_collectors(config, list(CATALOG))\n"
        "print(' '.join(m for m in ('redis', 'pymysql') if m in sys.modules))\n"
    )

    def loaded(config: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code, config], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    assert loaded("exporter: {collectors: {host: true}}") == ""
    assert loaded('targets: {redis: [{name: c, address: "127.0.0.1:6379"}]}') == "redis"
