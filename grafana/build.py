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
from typing import Any

from sscp_ops.generated import sync_generated

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
SCHEMA_VERSION = 38
DS = {"type": "prometheus", "uid": "${datasource}"}

GREEN, YELLOW, RED = "green", "#EAB839", "red"


def _steps(*pairs: tuple[float | None, str]) -> dict:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in pairs]}


AVAIL_STEPS = _steps((None, RED), (0.999, GREEN))
OK_STEPS = _steps((None, RED), (1, GREEN))  # a 0/1 health value: 1 is good
ANY_BAD_STEPS = _steps((None, GREEN), (1, RED))  # a count of bad things: any is bad
CPU_STEPS = _steps((None, GREEN), (0.7, YELLOW), (0.9, RED))
MEM_STEPS = _steps((None, GREEN), (0.8, YELLOW), (0.9, RED))
RATIO: dict = {"unit": "percentunit", "minmax": (0, 1)}
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
        self._w = self._h = 8

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

    def row(self, title: str, w: int = 8, h: int = 8) -> Board:
        """Start a row; its panels are w x h unless they say otherwise."""
        self._newline()
        self._w, self._h = w, h
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
        w: int | None = None,
        h: int | None = None,
        unit: str = "short",
        description: str = "",
        thresholds: dict | None = None,
        mappings: list | None = None,
        instant: bool = False,
        table: bool = False,
        decimals: int | None = None,
        minmax: tuple[float, float] | None = None,
        value_name: str | None = None,
        rename: dict[str, str] | None = None,
    ) -> Board:
        w, h = w or self._w, h or self._h
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
            # A table shows the labels; the value only when it means something (value_name).
            hidden = {"Time": True, "__name__": True, **({} if value_name else {"Value": True})}
            panel["transformations"] = [
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": hidden,
                        "renameByName": {
                            **({"Value": value_name} if value_name else {}),
                            "alertname": "告警名称",
                            "alertstate": "状态",
                            "severity": "级别",
                            "instance": "实例",
                            "target": "对象",
                            "job": "作业",
                            "set": "备份集",
                            "location": "位置",
                            **(rename or {}),
                        },
                    },
                }
            ]
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)
        return self

    # One method a panel kind: stat, gauge and bargauge show the latest value (instant
    # queries), a timeseries a range, a table the labels of an instant query.

    def stat(self, title: str, targets: list[tuple[str, str]], **kw: Any) -> Board:
        return self.panel("stat", title, targets, instant=True, **kw)

    def status(
        self, title: str, targets: list[tuple[str, str]], mappings: list = UP_MAPPINGS, **kw: Any
    ) -> Board:
        """A stat of 0/1 health values shown as words, red for 0 and green for 1."""
        return self.stat(title, targets, mappings=mappings, thresholds=OK_STEPS, **kw)

    def gauge(self, title: str, targets: list[tuple[str, str]], **kw: Any) -> Board:
        return self.panel("gauge", title, targets, instant=True, **kw)

    def bargauge(self, title: str, targets: list[tuple[str, str]], **kw: Any) -> Board:
        return self.panel("bargauge", title, targets, instant=True, **kw)

    def timeseries(self, title: str, targets: list[tuple[str, str]], **kw: Any) -> Board:
        return self.panel("timeseries", title, targets, **kw)

    def table(self, title: str, targets: list[tuple[str, str]], **kw: Any) -> Board:
        return self.panel("table", title, targets, table=True, **kw)

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
# The platform's availability, read the way the monthly report reads it: the recorded
# platform:sla_availability:up, once a minute (the rule's evaluation within that minute, not one
# bridged by the look-back), minutes without an evaluation left out.
PLATFORM_MINUTE = "last_over_time(platform:sla_availability:up[59s])"
PLATFORM_AVAILABILITY = f"avg_over_time({PLATFORM_MINUTE}[$__range:1m])"
PLATFORM_DOWNTIME = f"sum_over_time((1 - {PLATFORM_MINUTE})[$__range:1m]) * 60"
PLATFORM_MISSING = (
    f"clamp_min($__range_s - count_over_time({PLATFORM_MINUTE}[$__range:1m]) * 60, 0)"
)


def overview() -> dict:
    b = Board("sscp-overview", "指挥大屏 · 平台运行总览", ["overview"], time_from="now/M")
    b.variable("target", "拨测对象", "label_values(sla_probe_success, target)")
    b.row("服务指标（本月）", w=6)
    b.stat(
        "本月可用性",
        [(PLATFORM_AVAILABILITY, "可用性")],
        unit="percentunit",
        decimals=3,
        thresholds=AVAIL_STEPS,
        description="平台可用性（全部平台拨测同时成功的时间占比，逐分钟取值，无数据时段不计入）："
        "与月报、告警同一口径 platform:sla_availability:up；合同目标 ≥ 99.9%。",
    )
    b.stat(
        "本月不可用时长",
        [(PLATFORM_DOWNTIME, "不可用时长")],
        unit="s",
        thresholds=_steps((None, GREEN), (30 * 60, YELLOW), (43.8 * 60, RED)),
        description="平台不可用的分钟数（任一平台拨测失败即不可用），与月报的宕机时长同一口径；"
        "合同上限每月 43.8 分钟。",
    )
    b.stat(
        "本月数据缺失",
        [(PLATFORM_MISSING, "数据缺失")],
        unit="s",
        thresholds=_steps((None, GREEN), (43.8 * 60, RED)),
        description="没有平台可用性数据的时间（拨测未采集或某个平台拨测无数据），不计入上方可用性，"
        "单独列示；超过本期 0.1% 时月报标注“证据不足”（report.missing_data）。",
    )
    b.stat(
        "30 天错误预算剩余",
        [(f"min(target:sla_error_budget_remaining:ratio30d{{{PROBE}}})", "剩余")],
        unit="percentunit",
        thresholds=_steps((None, RED), (0.25, YELLOW), (0.5, GREEN)),
        description="99.9% 目标允许的 30 天失败时间中尚未用掉的部分（最差的拨测对象）。",
    )
    b.stat(
        "当前告警数",
        [
            (
                'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
                "告警",
            )
        ],
        thresholds=ANY_BAD_STEPS,
    )
    b.row("实时状态", h=6)
    b.status("拨测状态", [(f"sla_probe_success{{{PROBE}}}", "{{target}}")])
    b.stat(
        "页面响应时间",
        [(f"sla_probe_duration_seconds{{{PROBE}}}", "{{target}}")],
        unit="s",
        thresholds=_steps((None, GREEN), (1, YELLOW), (2, RED)),
        description="合同指标：页面查询响应 < 2 秒。",
    )
    b.status("采集目标状态", [('up{job=~"sscp-ops.*"}', "{{job}} {{instance}}")])
    b.status(
        "中间件状态",
        [
            ("nginx_up", "Nginx {{target}}"),
            ("tomcat_up", "Tomcat {{target}}"),
            ("redis_up", "Redis {{target}}"),
            ("mysql_up", "MySQL {{target}}"),
        ],
        w=24,
        h=5,
    )
    b.table(
        "活动告警",
        [('ALERTS{alertname!="Watchdog"}', "")],
        w=12,
        h=9,
        description="正在触发（firing）和等待确认（pending）的告警。",
    )
    b.bargauge(
        "主机 CPU 使用率",
        [("instance:node_cpu_utilisation:rate5m", "{{instance}}")],
        w=6,
        h=9,
        **RATIO,
        thresholds=CPU_STEPS,
    )
    b.bargauge(
        "主机内存使用率",
        [("instance:node_memory_utilisation:ratio", "{{instance}}")],
        w=6,
        h=9,
        **RATIO,
        thresholds=MEM_STEPS,
    )
    b.timeseries(
        "可用性趋势（1 小时滑动）",
        [(f"target:sla_probe_success:avg1h{{{PROBE}}}", "{{target}}")],
        w=24,
        h=8,
        unit="percentunit",
        thresholds=AVAIL_STEPS,
    )
    b.table(
        "版本清单",
        [("instance:sscp_component_version:info", "")],
        w=24,
        h=9,
        description="各主机运行的操作系统、Nginx、Tomcat、Redis、MariaDB 版本（记录规则 "
        "instance:sscp_component_version:info）。同一角色的主机版本不一致时触发 "
        "ComponentVersionDrift，组件软件包有待装安全更新时触发 ComponentSecurityUpdatePending。",
        rename={"component": "组件", "version": "版本", "role": "角色", "host": "主机"},
    )
    return b.build(refresh="30s")


def host() -> dict:
    b = Board("sscp-host", "主机监控", ["host"])
    b.variable("instance", "主机", "label_values(node_uname_info, instance)", multi=False)
    i = 'instance="$instance"'
    b.row("概览", w=6, h=4)
    b.stat("运行时长", [(f"time() - node_boot_time_seconds{{{i}}}", "")], unit="s")
    b.gauge(
        "CPU 使用率",
        [(f"instance:node_cpu_utilisation:rate5m{{{i}}}", "")],
        **RATIO,
        thresholds=CPU_STEPS,
    )
    b.gauge(
        "内存使用率",
        [(f"instance:node_memory_utilisation:ratio{{{i}}}", "")],
        **RATIO,
        thresholds=MEM_STEPS,
    )
    b.stat("CPU 核数", [(f'count(node_cpu_seconds_total{{{i}, mode="idle"}})', "")])
    b.row("CPU 与内存", w=12)
    b.timeseries(
        "CPU 使用率",
        [(f"instance:node_cpu_utilisation:rate5m{{{i}}}", "CPU")],
        **RATIO,
        thresholds=_steps((None, GREEN), (0.9, RED)),
    )
    b.timeseries(
        "系统负载",
        [
            (f"node_load1{{{i}}}", "1 分钟"),
            (f"node_load5{{{i}}}", "5 分钟"),
            (f"node_load15{{{i}}}", "15 分钟"),
        ],
    )
    b.timeseries(
        "内存",
        [
            (f"node_memory_MemTotal_bytes{{{i}}}", "总量"),
            (f"node_memory_MemTotal_bytes{{{i}}} - node_memory_MemAvailable_bytes{{{i}}}", "已用"),
            (f"node_memory_Cached_bytes{{{i}}}", "缓存"),
        ],
        unit="bytes",
    )
    b.timeseries(
        "交换分区使用",
        [(f"node_memory_SwapTotal_bytes{{{i}}} - node_memory_SwapFree_bytes{{{i}}}", "已用")],
        unit="bytes",
    )
    b.row("磁盘", w=12)
    b.bargauge(
        "文件系统已用",
        [(f"1 - instance:node_filesystem_avail:ratio{{{i}}}", "{{mountpoint}}")],
        **RATIO,
        thresholds=_steps((None, GREEN), (0.85, YELLOW), (0.95, RED)),
    )
    b.timeseries(
        "文件系统可用空间",
        [(f'node_filesystem_avail_bytes{{{i}, fstype!~"tmpfs|ramfs"}}', "{{mountpoint}}")],
        unit="bytes",
    )
    b.timeseries(
        "磁盘读写",
        [
            (f"rate(node_disk_read_bytes_total{{{i}}}[$__rate_interval])", "读 {{device}}"),
            (f"rate(node_disk_written_bytes_total{{{i}}}[$__rate_interval])", "写 {{device}}"),
        ],
        unit="Bps",
    )
    b.timeseries(
        "磁盘繁忙度",
        [(f"rate(node_disk_io_time_seconds_total{{{i}}}[$__rate_interval])", "{{device}}")],
        unit="percentunit",
    )
    b.row("网络", w=12)
    b.timeseries(
        "网络流量",
        [
            (f"rate(node_network_receive_bytes_total{{{i}}}[$__rate_interval])", "收 {{device}}"),
            (f"rate(node_network_transmit_bytes_total{{{i}}}[$__rate_interval])", "发 {{device}}"),
        ],
        unit="Bps",
    )
    b.timeseries(
        "网络错误",
        [
            (f"rate(node_network_receive_errs_total{{{i}}}[$__rate_interval])", "收 {{device}}"),
            (f"rate(node_network_transmit_errs_total{{{i}}}[$__rate_interval])", "发 {{device}}"),
        ],
        unit="pps",
    )
    return b.build()


def middleware() -> dict:
    b = Board("sscp-middleware", "中间件监控（Nginx / Tomcat / Redis）", ["middleware"])
    b.variable("nginx", "Nginx", "label_values(nginx_up, target)")
    b.variable("tomcat", "Tomcat", "label_values(tomcat_up, target)")
    b.variable("redis", "Redis", "label_values(redis_up, target)")
    n, t, r = 'target=~"$nginx"', 'target=~"$tomcat"', 'target=~"$redis"'
    b.row("Nginx", w=9, h=6)
    b.status("Nginx 状态", [(f"nginx_up{{{n}}}", "{{target}}")], w=6)
    b.timeseries(
        "请求速率",
        [(f"rate(nginx_http_requests_total{{{n}}}[$__rate_interval])", "{{target}}")],
        unit="reqps",
    )
    b.timeseries(
        "连接",
        [
            (f"nginx_connections_active{{{n}}}", "活动 {{target}}"),
            (f"nginx_connections_reading{{{n}}}", "读 {{target}}"),
            (f"nginx_connections_writing{{{n}}}", "写 {{target}}"),
            (f"nginx_connections_waiting{{{n}}}", "等待 {{target}}"),
        ],
    )
    b.row("Tomcat", w=9, h=6)
    b.status("Tomcat 状态", [(f"tomcat_up{{{t}}}", "{{target}}")], w=6)
    b.timeseries(
        "线程池使用率",
        [(f"target_connector:tomcat_threads_busy:ratio{{{t}}}", "{{target}} {{connector}}")],
        **RATIO,
        thresholds=_steps((None, GREEN), (0.8, RED)),
    )
    b.timeseries(
        "忙线程 / 最大线程",
        [
            (f"tomcat_threads_busy{{{t}}}", "忙 {{target}} {{connector}}"),
            (f"tomcat_threads_max{{{t}}}", "最大 {{target}} {{connector}}"),
        ],
    )
    b.row("Redis", w=9, h=6)
    b.status("Redis 状态", [(f"redis_up{{{r}}}", "{{target}}")], w=6)
    b.timeseries(
        "内存",
        [
            (f"redis_memory_used_bytes{{{r}}}", "已用 {{target}}"),
            (f"redis_memory_max_bytes{{{r}}} > 0", "maxmemory {{target}}"),
        ],
        unit="bytes",
    )
    b.timeseries(
        "内存占 maxmemory 比例",
        [(f"target:redis_memory_used:ratio{{{r}}}", "{{target}}")],
        **RATIO,
        thresholds=_steps((None, GREEN), (0.85, RED)),
    )
    b.timeseries(
        "命令速率",
        [(f"rate(redis_commands_processed_total{{{r}}}[$__rate_interval])", "{{target}}")],
        w=12,
        unit="ops",
    )
    b.timeseries("客户端连接", [(f"redis_connected_clients{{{r}}}", "{{target}}")], w=12)
    return b.build()


def mysql() -> dict:
    b = Board("sscp-mysql", "MySQL 数据库监控", ["mysql"])
    b.variable("target", "数据库", "label_values(mysql_up, target)")
    m = 'target=~"$target"'
    b.row("概览", w=6, h=5)
    b.status("MySQL 状态", [(f"mysql_up{{{m}}}", "{{target}}")])
    b.gauge(
        "连接数占比",
        [(f"target:mysql_connections:ratio{{{m}}}", "{{target}}")],
        **RATIO,
        thresholds=_steps((None, GREEN), (0.6, YELLOW), (0.8, RED)),
    )
    b.stat(
        "慢查询速率",
        [(f"target:mysql_slow_queries:rate5m{{{m}}}", "{{target}}")],
        unit="short",
        decimals=2,
        thresholds=_steps((None, GREEN), (0.1, RED)),
        description="每秒慢查询数（5 分钟平均），告警阈值见 rules/thresholds.yml。",
    )
    b.stat(
        "主从复制延迟",
        [(f"mysql_slave_status_seconds_behind_master{{{m}}}", "{{target}}")],
        unit="s",
        thresholds=_steps((None, GREEN), (30, RED)),
    )
    b.row("连接与查询", w=12)
    b.timeseries(
        "连接数",
        [
            (f"mysql_global_status_threads_connected{{{m}}}", "已连接 {{target}}"),
            (f"mysql_global_variables_max_connections{{{m}}}", "上限 {{target}}"),
        ],
    )
    b.timeseries(
        "慢查询",
        [(f"rate(mysql_global_status_slow_queries{{{m}}}[$__rate_interval])", "{{target}}")],
        unit="short",
        thresholds=_steps((None, GREEN), (0.1, RED)),
    )
    b.timeseries(
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
    b.bargauge(
        "30 天可用性",
        [(f"target:sla_probe_success:avg30d{{{p}}}", "{{target}}")],
        unit="percentunit",
        decimals=3,
        minmax=(0.99, 1),
        thresholds=AVAIL_STEPS,
    )
    b.bargauge(
        "错误预算剩余",
        [(f"target:sla_error_budget_remaining:ratio30d{{{p}}}", "{{target}}")],
        **RATIO,
        thresholds=_steps((None, RED), (0.25, YELLOW), (0.5, GREEN)),
        description="30 天窗口内 0.1% 允许失败时间中尚未用掉的比例；低于 0 表示已超支。",
    )
    b.stat(
        "平台 30 天可用性",
        [("platform:sla_availability:avg30d", "{{job}}")],
        unit="percentunit",
        decimals=3,
        thresholds=AVAIL_STEPS,
    )
    b.row("错误预算燃烧率", w=12)
    b.timeseries(
        "燃烧率（短窗口）",
        [
            (f"target:sla_probe_burn_rate:avg1h{{{p}}}", "1 小时 {{target}}"),
            (f"target:sla_probe_burn_rate:avg6h{{{p}}}", "6 小时 {{target}}"),
        ],
        thresholds=_steps((None, GREEN), (6, YELLOW), (14.4, RED)),
        description="1 = 恰好用完预算的速度；1 小时 > 14.4 或 6 小时 > 6 触发严重告警。",
    )
    b.timeseries(
        "燃烧率（长窗口）",
        [
            (f"target:sla_probe_burn_rate:avg1d{{{p}}}", "1 天 {{target}}"),
            (f"target:sla_probe_burn_rate:avg3d{{{p}}}", "3 天 {{target}}"),
        ],
        thresholds=_steps((None, GREEN), (1, YELLOW), (3, RED)),
        description="1 天 > 3 或 3 天 > 1 触发警告。",
    )
    b.row("拨测明细", w=12)
    b.timeseries(
        "拨测成功率（5 分钟）", [(f"target:sla_probe_success:avg5m{{{p}}}", "{{target}}")], **RATIO
    )
    b.timeseries(
        "响应时间",
        [(f"sla_probe_duration_seconds{{{p}}}", "{{target}}")],
        unit="s",
        thresholds=_steps((None, GREEN), (2, RED)),
    )
    b.timeseries("HTTP 状态码", [(f"sla_probe_http_status_code{{{p}}}", "{{target}}")])
    b.bargauge(
        "证书剩余天数",
        [
            (
                f"(sla_probe_tls_cert_expiry_timestamp_seconds{{{p}}} - time()) / 86400",
                "{{target}}",
            )
        ],
        unit="d",
        thresholds=_steps((None, RED), (3, YELLOW), (14, GREEN)),
    )
    return b.build()


def _ok_mappings(bad: str, good: str) -> list:
    return [
        {
            "type": "value",
            "options": {"0": {"text": bad, "color": RED}, "1": {"text": good, "color": GREEN}},
        }
    ]


def backup() -> dict:
    b = Board("sscp-backup", "备份与灾难恢复", ["backup"], time_from="now-30d")
    b.variable("set", "备份集", "label_values(backup_runs_total, set)")
    s = 'set=~"$set"'
    b.row("备份", w=6)
    b.stat(
        "距最近一次成功备份",
        [(f"time() - backup_last_success_timestamp_seconds{{{s}}}", "{{set}}")],
        h=5,
        unit="s",
        thresholds=_steps((None, GREEN), (24 * 3600, YELLOW), (26 * 3600, RED)),
        description="超过 26 小时触发 BackupMissing 告警。",
    )
    b.stat(
        "30 天备份成功率",
        [(f"set:backup_success_ratio:30d{{{s}}}", "{{set}}")],
        h=5,
        unit="percentunit",
        decimals=2,
        thresholds=AVAIL_STEPS,
        description="合同要求 ≥ 99.9%。",
    )
    b.status(
        "3-2-1 + 离线副本",
        [(f"backup_321_compliant{{{s}}}", "{{set}}")],
        h=5,
        mappings=_ok_mappings("不合规", "合规"),
        description="2 份本地 + 1 份异地 + 1 份已确认脱机的离线副本。",
    )
    b.status(
        "最近一次备份结果",
        [(f"backup_last_run_success{{{s}}}", "{{set}}")],
        h=5,
        mappings=_ok_mappings("失败", "成功"),
    )
    b.bargauge(
        "最新备份的有效副本数",
        [(f"backup_copies{{{s}}}", "{{set}} {{location_kind}}")],
        w=8,
        minmax=(0, 3),
        thresholds=OK_STEPS,
    )
    b.table(
        "各位置副本校验",
        [(f"backup_copy_verified{{{s}}}", "{{set}}")],
        w=8,
        mappings=_ok_mappings("损坏/缺失", "校验通过"),
        value_name="状态",
    )
    b.timeseries(
        "每日备份失败次数", [(f"increase(backup_failures_total{{{s}}}[1d])", "{{set}}")], w=8
    )
    b.timeseries(
        "备份大小（压缩后）", [(f"backup_size_bytes{{{s}}}", "{{set}}")], w=12, unit="bytes"
    )
    b.timeseries("备份耗时", [(f"backup_last_duration_seconds{{{s}}}", "{{set}}")], w=12, unit="s")
    b.row("恢复演练", h=5)
    b.status(
        "最近一次恢复演练",
        [(f"restore_drill_last_success{{{s}}}", "{{set}}")],
        mappings=_ok_mappings("失败", "成功"),
    )
    b.stat(
        "恢复耗时（目标 ≤ 4 小时）",
        [(f"restore_drill_duration_seconds{{{s}}}", "{{set}}")],
        unit="s",
        thresholds=_steps((None, GREEN), (3 * 3600, YELLOW), (4 * 3600, RED)),
    )
    b.stat(
        "距上次恢复演练",
        [(f"(time() - restore_drill_last_timestamp_seconds{{{s}}}) / 86400", "{{set}}")],
        unit="d",
        thresholds=_steps((None, GREEN), (80, YELLOW), (92, RED)),
        description="每季度至少一次，超过 92 天触发 RestoreDrillOverdue。",
    )
    return b.build()


def _quantiles(buckets: str, by: str, legend: str) -> list[tuple[str, str]]:
    """P50 and P90 of a histogram's bucket series, summed by the labels in ``by``."""
    return [
        (f"histogram_quantile({q}, sum by ({by}) ({buckets}))", f"P{round(q * 100)} {legend}")
        for q in (0.5, 0.9)
    ]


def tickets() -> dict:
    b = Board("sscp-tickets", "工单与 SLA 计时", ["tickets", "sla"], time_from="now-7d")
    b.variable("kind", "工单类型", "label_values(sscp_tickets_created_total, kind)")
    k = 'kind=~"$kind"'
    b.row("工单概况", w=6, h=5)
    b.stat(
        "未关闭工单（按级别）",
        [(f"sum by (severity) (sscp_tickets_open{{{k}}})", "{{severity}}")],
        thresholds=_steps((None, GREEN), (1, YELLOW)),
    )
    b.stat(
        "超时未响应",
        [("sscp_tickets_response_overdue", "超时未响应")],
        thresholds=ANY_BAD_STEPS,
        description="已超过响应时限（15 分钟）仍未确认的工单数，触发 TicketResponseOverdue。",
    )
    b.stat(
        "工单解决率",
        [(f"kind:sscp_tickets_resolved:ratio{{{k}}}", "{{kind}}")],
        unit="percentunit",
        decimals=1,
        thresholds=_steps((None, RED), (0.95, GREEN)),
        description="已解决 / 已创建；合同要求 ≥ 95%。",
    )
    b.stat(
        "平均解决时间",
        [(f"kind:sscp_ticket_resolution_seconds:mean{{{k}}}", "{{kind}}")],
        unit="s",
        thresholds=_steps((None, GREEN), (7200, RED)),
        description="合同要求 ≤ 2 小时。",
    )
    b.row("SLA 计时", w=12)
    b.bargauge(
        "响应时间分布",
        [(f"sum by (le) (sscp_ticket_response_seconds_bucket{{{k}}})", "≤ {{le}} 秒")],
        description="从创建到确认的时间，每档为累计工单数。",
    )
    b.bargauge(
        "解决时间分布",
        [(f"sum by (le) (sscp_ticket_resolution_seconds_bucket{{{k}}})", "≤ {{le}} 秒")],
        description="从创建到解决的时间，每档为累计工单数。",
    )
    b.timeseries(
        "响应时间（P50 / P90）",
        _quantiles(f"sscp_ticket_response_seconds_bucket{{{k}}}", "le, kind", "{{kind}}"),
        unit="s",
        thresholds=_steps((None, GREEN), (900, RED)),
    )
    b.timeseries(
        "解决时间（P50 / P90）",
        _quantiles(f"sscp_ticket_resolution_seconds_bucket{{{k}}}", "le, kind", "{{kind}}"),
        unit="s",
        thresholds=_steps((None, GREEN), (7200, RED)),
    )
    b.stat(
        "SLA 超时（响应 / 解决）",
        [
            (f"sum by (kind) (sscp_ticket_response_breaches_total{{{k}}})", "响应 {{kind}}"),
            (f"sum by (kind) (sscp_ticket_resolution_breaches_total{{{k}}})", "解决 {{kind}}"),
        ],
        w=8,
        thresholds=ANY_BAD_STEPS,
    )
    b.stat(
        "重复发生 / 未关闭问题",
        [
            ("sscp_ticket_recurrences_total", "重复发生的事件"),
            ("sscp_problems_open", "未关闭问题"),
        ],
        w=8,
        thresholds=_steps((None, GREEN), (1, YELLOW)),
    )
    b.status("工单系统状态", [("sscp_webhook_store_up", "工单库")], w=8)
    b.row("通知", w=6)
    b.bargauge(
        "通知（按渠道与状态）",
        [("sum by (channel, status) (sscp_notices)", "{{channel}} {{status}}")],
        w=12,
    )
    b.stat(
        "发送失败 / 待发送",
        [
            ('sum by (channel) (sscp_notices{status="failed"})', "失败 {{channel}}"),
            ('sum by (channel) (sscp_notices{status=~"pending|sending"})', "待发 {{channel}}"),
        ],
        thresholds=ANY_BAD_STEPS,
    )
    b.stat(
        "发件箱最久积压",
        [("sscp_outbox_oldest_pending_age_seconds", "{{channel}}")],
        unit="s",
        thresholds=_steps((None, GREEN), (300, YELLOW), (600, RED)),
        description="最早一条未发出通知的等待时间；超过 10 分钟触发 NotificationDeliveryFailing。",
    )
    b.timeseries(
        "已发送通知", [('sum by (channel) (sscp_notices{status="sent"})', "{{channel}}")], w=24
    )
    return b.build()


def security() -> dict:
    b = Board("sscp-security", "安全监控", ["security"], time_from="now-24h")
    b.variable("target", "站点", "label_values(nginx_http_responses_total, target)")
    n = 'target=~"$target"'
    b.row("攻击与异常", w=12)
    b.bargauge(
        "安全事件（所选时间范围）",
        [("sum by (type) (increase(sscp_security_events_total[$__range]))", "{{type}}")],
        thresholds=ANY_BAD_STEPS,
        description="日志分析发现的 SQL 注入、XSS、路径遍历、扫描器、暴力破解、异常导出等。",
    )
    b.timeseries("安全事件（每小时）", [("type:sscp_security_events:increase1h", "{{type}}")])
    b.stat(
        "异常数据导出（所选时间范围）",
        [
            (
                'sum(increase(sscp_security_events_total{type="abnormal_export"}[$__range]))',
                "异常导出",
            )
        ],
        w=6,
        h=5,
        thresholds=ANY_BAD_STEPS,
    )
    b.row("访问与响应", w=6)
    b.timeseries(
        "HTTP 响应（按状态类别）",
        [
            (
                f"sum by (status_class) "
                f"(rate(nginx_http_responses_total{{{n}}}[$__rate_interval]))",
                "{{status_class}}",
            )
        ],
        w=12,
        unit="reqps",
    )
    b.stat(
        "2 秒内响应的请求占比",
        [
            (
                f'sum(increase(nginx_http_request_duration_seconds_bucket{{{n}, le="1.999"}}'
                f"[$__range])) / (sum(increase(nginx_http_request_duration_seconds_count"
                f"{{{n}}}[$__range])) > 0)",
                "< 2 秒",
            )
        ],
        unit="percentunit",
        decimals=2,
        thresholds=_steps((None, RED), (0.95, YELLOW), (0.99, GREEN)),
        description="合同指标：页面查询响应 < 2 秒（Nginx 访问日志的 request_time，毫秒精度："
        "≤ 1.999 秒即 < 2 秒，恰好 2.000 秒不计入）。",
    )
    b.stat(
        "5xx 比例",
        [
            (
                f'sum(increase(nginx_http_responses_total{{{n}, status_class="5xx"}}[$__range]))'
                f" / (sum(increase(nginx_http_responses_total{{{n}}}[$__range])) > 0)",
                "5xx",
            )
        ],
        unit="percentunit",
        decimals=2,
        thresholds=_steps((None, GREEN), (0.01, YELLOW), (0.05, RED)),
    )
    b.row("漏洞、证书与补丁", w=6)
    b.stat(
        "未修复漏洞 / 已超期",
        [
            ("sum by (risk) (sscp_vulnerabilities_open)", "未修复 {{risk}}"),
            ("sum by (risk) (sscp_vulnerabilities_overdue)", "超期 {{risk}}"),
        ],
        w=8,
        thresholds=ANY_BAD_STEPS,
        description="高危 48 小时、中危 7 天、低危 30 天内修复。",
    )
    b.gauge(
        "漏洞修复率（90 天）",
        [("sscp_vulnerability_fix_ratio", "修复率")],
        w=4,
        **RATIO,
        thresholds=_steps((None, RED), (0.9, GREEN)),
    )
    b.bargauge(
        "证书剩余天数",
        [("(sscp_tls_cert_expiry_timestamp_seconds - time()) / 86400", "{{target}}")],
        unit="d",
        thresholds=_steps((None, RED), (14, YELLOW), (30, GREEN)),
    )
    b.status(
        "证书链 / HTTPS 跳转",
        [
            ("sscp_tls_chain_valid", "证书链 {{target}}"),
            ("sscp_tls_http_redirect", "跳转 {{target}}"),
        ],
        mappings=_ok_mappings("异常", "正常"),
    )
    b.stat(
        "待安装安全更新",
        [
            ("sscp_os_security_updates_pending", "安全更新 {{instance}}"),
            ("sscp_os_updates_pending", "全部更新 {{instance}}"),
        ],
        w=12,
        h=5,
        thresholds=_steps((None, GREEN), (1, YELLOW)),
    )
    b.stat(
        "距上次安装更新",
        [("(time() - sscp_os_last_update_timestamp_seconds) / 86400", "{{instance}}")],
        w=12,
        h=5,
        unit="d",
        thresholds=_steps((None, GREEN), (25, YELLOW), (31, RED)),
        description="每月安装安全更新；超过 31 天且有待装安全更新触发 OsPatchOverdue。",
    )
    return b.build()


DASHBOARDS = {
    "overview": overview,
    "host": host,
    "middleware": middleware,
    "mysql": mysql,
    "availability": availability,
    "backup": backup,
    "tickets": tickets,
    "security": security,
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
    return sync_generated(render_all(), args.check, "dashboards", "wrote grafana/dashboards/")


if __name__ == "__main__":
    sys.exit(main())
