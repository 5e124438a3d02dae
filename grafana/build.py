#!/usr/bin/env python3
"""Build grafana/dashboards/*.json (Grafana dashboard model, schemaVersion 38) from the panel
lists below. Run by ``make dashboards``; ``--check`` exits 1 when a committed file differs
(tests/test_grafana_dashboards.py runs it).

Dashboards are written here rather than exported from a Grafana UI so that every uid, id and
grid position is stable and every query is reviewable (and tested against a real Prometheus).
Each dashboard has a ``datasource`` variable and a target/instance variable; all titles are
Chinese (the client reads them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
SCHEMA_VERSION = 38
DS = {"type": "prometheus", "uid": "${datasource}"}

GREEN, YELLOW, RED = "green", "#EAB839", "red"


def _steps(*pairs: tuple[float | None, str]) -> dict:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in pairs]}


AVAIL_STEPS = _steps((None, RED), (0.999, GREEN))
UP_MAPPINGS = [
    {
        "type": "value",
        "options": {"0": {"text": "故障", "color": RED}, "1": {"text": "正常", "color": GREEN}},
    }
]


class Board:
    """Collects panels left to right, top to bottom, on Grafana's 24-column grid."""

    def __init__(self, uid: str, title: str, tags: list[str], time_from: str = "now-6h") -> None:
        self.uid, self.title, self.tags, self.time_from = uid, title, tags, time_from
        self.panels: list[dict] = []
        self.variables: list[dict] = [
            {
                "name": "datasource",
                "label": "数据源",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": [],
            }
        ]
        self._x = self._y = self._row_h = 0

    def variable(self, name: str, label: str, query: str, multi: bool = True) -> Board:
        self.variables.append(
            {
                "name": name,
                "label": label,
                "type": "query",
                "datasource": DS,
                "definition": query,
                "query": {"query": query, "refId": f"{name}-query"},
                "refresh": 2,
                "sort": 1,
                "multi": multi,
                "includeAll": multi,
                "allValue": ".*" if multi else None,
                "current": {},
                "hide": 0,
                "options": [],
                "regex": "",
            }
        )
        return self

    def row(self, title: str) -> Board:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
            }
        )
        self._y += 1
        return self

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
            self._x = self._row_h = 0

    def panel(
        self,
        kind: str,
        title: str,
        targets: list[tuple[str, str]],
        w: int = 8,
        h: int = 8,
        unit: str = "short",
        description: str = "",
        thresholds: dict | None = None,
        mappings: list | None = None,
        instant: bool = False,
        table: bool = False,
        decimals: int | None = None,
        minmax: tuple[float, float] | None = None,
    ) -> Board:
        if self._x + w > 24:
            self._newline()
        defaults: dict = {"unit": unit, "mappings": mappings or []}
        defaults["thresholds"] = thresholds or _steps((None, GREEN))
        if decimals is not None:
            defaults["decimals"] = decimals
        if minmax is not None:
            defaults["min"], defaults["max"] = minmax
        if kind == "timeseries":
            defaults["custom"] = {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
            if thresholds:
                defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
        options: dict = {}
        if kind == "stat":
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background",
                "graphMode": "none",
                "textMode": "auto",
                "justifyMode": "center",
                "orientation": "auto",
            }
        elif kind in ("gauge", "bargauge"):
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal",
                "showThresholdMarkers": True,
            }
        elif kind == "timeseries":
            options = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif kind == "table":
            options = {"showHeader": True, "cellHeight": "sm"}
        panel = {
            "id": 0,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": DS,
                    "expr": expr,
                    "legendFormat": legend,
                    "instant": instant or table,
                    "range": not (instant or table),
                    **({"format": "table"} if table else {}),
                }
                for i, (expr, legend) in enumerate(targets)
            ],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options,
        }
        if table:
            panel["transformations"] = [
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "Value": True, "__name__": True},
                        "renameByName": {
                            "alertname": "告警名称",
                            "alertstate": "状态",
                            "severity": "级别",
                            "instance": "实例",
                            "target": "对象",
                            "job": "作业",
                        },
                    },
                }
            ]
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)
        return self

    def build(self, refresh: str = "1m") -> dict:
        for i, panel in enumerate(self.panels, 1):
            panel["id"] = i
        return {
            "uid": self.uid,
            "title": self.title,
            "tags": ["sscp", *self.tags],
            "timezone": "browser",
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "refresh": refresh,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["sscp"],
                    "asDropdown": True,
                    "title": "运维看板",
                    "includeVars": False,
                    "keepTime": True,
                }
            ],
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


PROBE = 'target=~"$target"'


def overview() -> dict:
    b = Board("sscp-overview", "指挥大屏 · 平台运行总览", ["overview"], time_from="now/M")
    b.variable("target", "拨测对象", "label_values(sla_probe_success, target)")
    b.row("服务指标（本月）")
    b.panel(
        "stat",
        "本月可用性",
        [(f"avg(avg_over_time(sla_probe_success{{{PROBE}}}[$__range]))", "可用性")],
        w=6,
        unit="percentunit",
        decimals=3,
        thresholds=AVAIL_STEPS,
        description="所选时间范围内拨测成功的比例；合同目标 ≥ 99.9%。",
        instant=True,
    )
    b.panel(
        "stat",
        "本月不可用时长",
        [
            (
                f"(1 - avg(avg_over_time(sla_probe_success{{{PROBE}}}[$__range]))) * $__range_s",
                "不可用时长",
            )
        ],
        w=6,
        unit="s",
        thresholds=_steps((None, GREEN), (30 * 60, YELLOW), (43.8 * 60, RED)),
        description="按拨测失败比例折算的不可用时间；合同上限每月 43.8 分钟。",
        instant=True,
    )
    b.panel(
        "stat",
        "30 天错误预算剩余",
        [(f"min(target:sla_error_budget_remaining:ratio30d{{{PROBE}}})", "剩余")],
        w=6,
        unit="percentunit",
        thresholds=_steps((None, RED), (0.25, YELLOW), (0.5, GREEN)),
        description="99.9% 目标允许的 30 天失败时间中尚未用掉的部分（最差的拨测对象）。",
        instant=True,
    )
    b.panel(
        "stat",
        "当前告警数",
        [
            (
                'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
                "告警",
            )
        ],
        w=6,
        thresholds=_steps((None, GREEN), (1, RED)),
        instant=True,
    )
    b.row("实时状态")
    b.panel(
        "stat",
        "拨测状态",
        [(f"sla_probe_success{{{PROBE}}}", "{{target}}")],
        w=8,
        h=6,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "stat",
        "页面响应时间",
        [(f"sla_probe_duration_seconds{{{PROBE}}}", "{{target}}")],
        w=8,
        h=6,
        unit="s",
        thresholds=_steps((None, GREEN), (1, YELLOW), (2, RED)),
        description="合同指标：页面查询响应 < 2 秒。",
        instant=True,
    )
    b.panel(
        "stat",
        "采集目标状态",
        [('up{job=~"sscp-ops.*"}', "{{job}} {{instance}}")],
        w=8,
        h=6,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "stat",
        "中间件状态",
        [
            ("nginx_up", "Nginx {{target}}"),
            ("tomcat_up", "Tomcat {{target}}"),
            ("redis_up", "Redis {{target}}"),
            ("mysql_up", "MySQL {{target}}"),
        ],
        w=24,
        h=5,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "table",
        "活动告警",
        [('ALERTS{alertname!="Watchdog"}', "")],
        w=12,
        h=9,
        table=True,
        description="正在触发（firing）和等待确认（pending）的告警。",
    )
    b.panel(
        "bargauge",
        "主机 CPU 使用率",
        [("instance:node_cpu_utilisation:rate5m", "{{instance}}")],
        w=6,
        h=9,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.7, YELLOW), (0.9, RED)),
        instant=True,
    )
    b.panel(
        "bargauge",
        "主机内存使用率",
        [("instance:node_memory_utilisation:ratio", "{{instance}}")],
        w=6,
        h=9,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.8, YELLOW), (0.9, RED)),
        instant=True,
    )
    b.panel(
        "timeseries",
        "可用性趋势（1 小时滑动）",
        [(f"target:sla_probe_success:avg1h{{{PROBE}}}", "{{target}}")],
        w=24,
        unit="percentunit",
        thresholds=AVAIL_STEPS,
    )
    return b.build(refresh="30s")


def host() -> dict:
    b = Board("sscp-host", "主机监控", ["host"])
    b.variable("instance", "主机", "label_values(node_uname_info, instance)", multi=False)
    i = 'instance="$instance"'
    b.row("概览")
    b.panel(
        "stat",
        "运行时长",
        [(f"time() - node_boot_time_seconds{{{i}}}", "")],
        w=6,
        h=4,
        unit="s",
        instant=True,
    )
    b.panel(
        "gauge",
        "CPU 使用率",
        [(f"instance:node_cpu_utilisation:rate5m{{{i}}}", "")],
        w=6,
        h=4,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.7, YELLOW), (0.9, RED)),
        instant=True,
    )
    b.panel(
        "gauge",
        "内存使用率",
        [(f"instance:node_memory_utilisation:ratio{{{i}}}", "")],
        w=6,
        h=4,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.8, YELLOW), (0.9, RED)),
        instant=True,
    )
    b.panel(
        "stat",
        "CPU 核数",
        [(f'count(node_cpu_seconds_total{{{i}, mode="idle"}})', "")],
        w=6,
        h=4,
        instant=True,
    )
    b.row("CPU 与内存")
    b.panel(
        "timeseries",
        "CPU 使用率",
        [(f"instance:node_cpu_utilisation:rate5m{{{i}}}", "CPU")],
        w=12,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.9, RED)),
    )
    b.panel(
        "timeseries",
        "系统负载",
        [
            (f"node_load1{{{i}}}", "1 分钟"),
            (f"node_load5{{{i}}}", "5 分钟"),
            (f"node_load15{{{i}}}", "15 分钟"),
        ],
        w=12,
    )
    b.panel(
        "timeseries",
        "内存",
        [
            (f"node_memory_MemTotal_bytes{{{i}}}", "总量"),
            (f"node_memory_MemTotal_bytes{{{i}}} - node_memory_MemAvailable_bytes{{{i}}}", "已用"),
            (f"node_memory_Cached_bytes{{{i}}}", "缓存"),
        ],
        w=12,
        unit="bytes",
    )
    b.panel(
        "timeseries",
        "交换分区使用",
        [(f"node_memory_SwapTotal_bytes{{{i}}} - node_memory_SwapFree_bytes{{{i}}}", "已用")],
        w=12,
        unit="bytes",
    )
    b.row("磁盘")
    b.panel(
        "bargauge",
        "文件系统已用",
        [(f"1 - instance:node_filesystem_avail:ratio{{{i}}}", "{{mountpoint}}")],
        w=12,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.85, YELLOW), (0.95, RED)),
        instant=True,
    )
    b.panel(
        "timeseries",
        "文件系统可用空间",
        [(f'node_filesystem_avail_bytes{{{i}, fstype!~"tmpfs|ramfs"}}', "{{mountpoint}}")],
        w=12,
        unit="bytes",
    )
    b.panel(
        "timeseries",
        "磁盘读写",
        [
            (f"rate(node_disk_read_bytes_total{{{i}}}[$__rate_interval])", "读 {{device}}"),
            (f"rate(node_disk_written_bytes_total{{{i}}}[$__rate_interval])", "写 {{device}}"),
        ],
        w=12,
        unit="Bps",
    )
    b.panel(
        "timeseries",
        "磁盘繁忙度",
        [(f"rate(node_disk_io_time_seconds_total{{{i}}}[$__rate_interval])", "{{device}}")],
        w=12,
        unit="percentunit",
    )
    b.row("网络")
    b.panel(
        "timeseries",
        "网络流量",
        [
            (f"rate(node_network_receive_bytes_total{{{i}}}[$__rate_interval])", "收 {{device}}"),
            (f"rate(node_network_transmit_bytes_total{{{i}}}[$__rate_interval])", "发 {{device}}"),
        ],
        w=12,
        unit="Bps",
    )
    b.panel(
        "timeseries",
        "网络错误",
        [
            (f"rate(node_network_receive_errs_total{{{i}}}[$__rate_interval])", "收 {{device}}"),
            (f"rate(node_network_transmit_errs_total{{{i}}}[$__rate_interval])", "发 {{device}}"),
        ],
        w=12,
        unit="pps",
    )
    return b.build()


def middleware() -> dict:
    b = Board("sscp-middleware", "中间件监控（Nginx / Tomcat / Redis）", ["middleware"])
    b.variable("nginx", "Nginx", "label_values(nginx_up, target)")
    b.variable("tomcat", "Tomcat", "label_values(tomcat_up, target)")
    b.variable("redis", "Redis", "label_values(redis_up, target)")
    n, t, r = 'target=~"$nginx"', 'target=~"$tomcat"', 'target=~"$redis"'
    b.row("Nginx")
    b.panel(
        "stat",
        "Nginx 状态",
        [(f"nginx_up{{{n}}}", "{{target}}")],
        w=6,
        h=6,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "timeseries",
        "请求速率",
        [(f"rate(nginx_http_requests_total{{{n}}}[$__rate_interval])", "{{target}}")],
        w=9,
        h=6,
        unit="reqps",
    )
    b.panel(
        "timeseries",
        "连接",
        [
            (f"nginx_connections_active{{{n}}}", "活动 {{target}}"),
            (f"nginx_connections_reading{{{n}}}", "读 {{target}}"),
            (f"nginx_connections_writing{{{n}}}", "写 {{target}}"),
            (f"nginx_connections_waiting{{{n}}}", "等待 {{target}}"),
        ],
        w=9,
        h=6,
    )
    b.row("Tomcat")
    b.panel(
        "stat",
        "Tomcat 状态",
        [(f"tomcat_up{{{t}}}", "{{target}}")],
        w=6,
        h=6,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "timeseries",
        "线程池使用率",
        [(f"target_connector:tomcat_threads_busy:ratio{{{t}}}", "{{target}} {{connector}}")],
        w=9,
        h=6,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.8, RED)),
    )
    b.panel(
        "timeseries",
        "忙线程 / 最大线程",
        [
            (f"tomcat_threads_busy{{{t}}}", "忙 {{target}} {{connector}}"),
            (f"tomcat_threads_max{{{t}}}", "最大 {{target}} {{connector}}"),
        ],
        w=9,
        h=6,
    )
    b.row("Redis")
    b.panel(
        "stat",
        "Redis 状态",
        [(f"redis_up{{{r}}}", "{{target}}")],
        w=6,
        h=6,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "timeseries",
        "内存",
        [
            (f"redis_memory_used_bytes{{{r}}}", "已用 {{target}}"),
            (f"redis_memory_max_bytes{{{r}}} > 0", "maxmemory {{target}}"),
        ],
        w=9,
        h=6,
        unit="bytes",
    )
    b.panel(
        "timeseries",
        "内存占 maxmemory 比例",
        [(f"target:redis_memory_used:ratio{{{r}}}", "{{target}}")],
        w=9,
        h=6,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.85, RED)),
    )
    b.panel(
        "timeseries",
        "命令速率",
        [(f"rate(redis_commands_processed_total{{{r}}}[$__rate_interval])", "{{target}}")],
        w=12,
        h=6,
        unit="ops",
    )
    b.panel(
        "timeseries",
        "客户端连接",
        [(f"redis_connected_clients{{{r}}}", "{{target}}")],
        w=12,
        h=6,
    )
    return b.build()


def mysql() -> dict:
    b = Board("sscp-mysql", "MySQL 数据库监控", ["mysql"])
    b.variable("target", "数据库", "label_values(mysql_up, target)")
    m = 'target=~"$target"'
    b.row("概览")
    b.panel(
        "stat",
        "MySQL 状态",
        [(f"mysql_up{{{m}}}", "{{target}}")],
        w=6,
        h=5,
        mappings=UP_MAPPINGS,
        thresholds=_steps((None, RED), (1, GREEN)),
        instant=True,
    )
    b.panel(
        "gauge",
        "连接数占比",
        [(f"target:mysql_connections:ratio{{{m}}}", "{{target}}")],
        w=6,
        h=5,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, GREEN), (0.6, YELLOW), (0.8, RED)),
        instant=True,
    )
    b.panel(
        "stat",
        "慢查询速率",
        [(f"target:mysql_slow_queries:rate5m{{{m}}}", "{{target}}")],
        w=6,
        h=5,
        unit="short",
        decimals=2,
        thresholds=_steps((None, GREEN), (0.1, RED)),
        description="每秒慢查询数（5 分钟平均），告警阈值见 rules/thresholds.yml。",
        instant=True,
    )
    b.panel(
        "stat",
        "主从复制延迟",
        [(f"mysql_slave_status_seconds_behind_master{{{m}}}", "{{target}}")],
        w=6,
        h=5,
        unit="s",
        thresholds=_steps((None, GREEN), (30, RED)),
        instant=True,
    )
    b.row("连接与查询")
    b.panel(
        "timeseries",
        "连接数",
        [
            (f"mysql_global_status_threads_connected{{{m}}}", "已连接 {{target}}"),
            (f"mysql_global_variables_max_connections{{{m}}}", "上限 {{target}}"),
        ],
        w=12,
    )
    b.panel(
        "timeseries",
        "慢查询",
        [(f"rate(mysql_global_status_slow_queries{{{m}}}[$__rate_interval])", "{{target}}")],
        w=12,
        unit="short",
        thresholds=_steps((None, GREEN), (0.1, RED)),
    )
    b.panel(
        "timeseries",
        "复制延迟",
        [(f"mysql_slave_status_seconds_behind_master{{{m}}}", "{{target}}")],
        w=24,
        unit="s",
        thresholds=_steps((None, GREEN), (30, RED)),
    )
    return b.build()


def availability() -> dict:
    b = Board("sscp-availability", "可用性与 SLO", ["availability", "slo"], time_from="now-7d")
    b.variable("target", "拨测对象", "label_values(sla_probe_success, target)")
    p = PROBE
    b.row("30 天服务水平（目标 99.9%）")
    b.panel(
        "bargauge",
        "30 天可用性",
        [(f"target:sla_probe_success:avg30d{{{p}}}", "{{target}}")],
        w=8,
        unit="percentunit",
        decimals=3,
        minmax=(0.99, 1),
        thresholds=AVAIL_STEPS,
        instant=True,
    )
    b.panel(
        "bargauge",
        "错误预算剩余",
        [(f"target:sla_error_budget_remaining:ratio30d{{{p}}}", "{{target}}")],
        w=8,
        unit="percentunit",
        minmax=(0, 1),
        thresholds=_steps((None, RED), (0.25, YELLOW), (0.5, GREEN)),
        description="30 天窗口内 0.1% 允许失败时间中尚未用掉的比例；低于 0 表示已超支。",
        instant=True,
    )
    b.panel(
        "stat",
        "平台 30 天可用性",
        [("job:sla_probe_success:avg30d", "{{job}}")],
        w=8,
        unit="percentunit",
        decimals=3,
        thresholds=AVAIL_STEPS,
        instant=True,
    )
    b.row("错误预算燃烧率")
    b.panel(
        "timeseries",
        "燃烧率（短窗口）",
        [
            (f"target:sla_probe_burn_rate:avg1h{{{p}}}", "1 小时 {{target}}"),
            (f"target:sla_probe_burn_rate:avg6h{{{p}}}", "6 小时 {{target}}"),
        ],
        w=12,
        thresholds=_steps((None, GREEN), (6, YELLOW), (14.4, RED)),
        description="1 = 恰好用完预算的速度；1 小时 > 14.4 或 6 小时 > 6 触发严重告警。",
    )
    b.panel(
        "timeseries",
        "燃烧率（长窗口）",
        [
            (f"target:sla_probe_burn_rate:avg1d{{{p}}}", "1 天 {{target}}"),
            (f"target:sla_probe_burn_rate:avg3d{{{p}}}", "3 天 {{target}}"),
        ],
        w=12,
        thresholds=_steps((None, GREEN), (1, YELLOW), (3, RED)),
        description="1 天 > 3 或 3 天 > 1 触发警告。",
    )
    b.row("拨测明细")
    b.panel(
        "timeseries",
        "拨测成功率（5 分钟）",
        [(f"target:sla_probe_success:avg5m{{{p}}}", "{{target}}")],
        w=12,
        unit="percentunit",
        minmax=(0, 1),
    )
    b.panel(
        "timeseries",
        "响应时间",
        [(f"sla_probe_duration_seconds{{{p}}}", "{{target}}")],
        w=12,
        unit="s",
        thresholds=_steps((None, GREEN), (2, RED)),
    )
    b.panel(
        "timeseries",
        "HTTP 状态码",
        [(f"sla_probe_http_status_code{{{p}}}", "{{target}}")],
        w=12,
    )
    b.panel(
        "bargauge",
        "证书剩余天数",
        [
            (
                f"(sla_probe_tls_cert_expiry_timestamp_seconds{{{p}}} - time()) / 86400",
                "{{target}}",
            )
        ],
        w=12,
        unit="d",
        thresholds=_steps((None, RED), (3, YELLOW), (14, GREEN)),
        instant=True,
    )
    return b.build()


DASHBOARDS = {
    "overview": overview,
    "host": host,
    "middleware": middleware,
    "mysql": mysql,
    "availability": availability,
}


def render_all() -> dict[Path, str]:
    return {
        OUT / f"{name}.json": json.dumps(build(), ensure_ascii=False, indent=2) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    stale = []
    for path, text in render_all().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date, run `make dashboards`: {', '.join(stale)}", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote grafana/dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
