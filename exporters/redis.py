"""Redis collector: ``INFO``, ``SLOWLOG LEN`` and ``CONFIG GET databases`` of each configured
target in one pipelined round trip, under the names of redis_exporter (1.45), so its rules and
dashboards work unchanged. Sample output::

    redis_up{target="cache1"} 1
    redis_uptime_in_seconds{target="cache1"} 86400
    redis_connected_clients{target="cache1"} 12
    redis_memory_used_bytes{target="cache1"} 1.015e+06
    redis_memory_max_bytes{target="cache1"} 2.147483648e+09
    redis_mem_fragmentation_ratio{target="cache1"} 1.21
    redis_commands_processed_total{target="cache1"} 52310
    redis_keyspace_hits_total{target="cache1"} 4100
    redis_db_keys{db="db0",target="cache1"} 3
    redis_rdb_last_bgsave_status{target="cache1"} 1
    redis_config_maxclients{target="cache1"} 10000
    redis_master_link_up{target="replica1"} 0
    redis_slowlog_length{target="cache1"} 0
    redis_instance_info{redis_version="7.0.15",role="master",...,target="cache1"} 1

``CONFIG GET`` is often disabled or renamed on production servers; then ``redis_db_*`` only
lists the databases that hold keys. One ``redis.Redis`` client (with its connection pool) is
kept per target; the pool replaces a connection the server has closed.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.backoff import NoBackoff
from redis.retry import Retry

from exporters.core import Collector, ParseError, TargetCollector, TargetUnavailable, read_password
from sscp_ops.config import Config
from sscp_ops.config.targets import RedisTarget


@dataclass(frozen=True)
class KeyspaceDb:
    keys: int
    expires: int
    avg_ttl_ms: int


@dataclass(frozen=True)
class RedisInfo:
    fields: dict[str, str] = field(default_factory=dict)
    keyspace: dict[str, KeyspaceDb] = field(default_factory=dict)


# Sections every INFO answer has; a reply cut short misses the later ones.
_REQUIRED_SECTIONS = ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication")


def parse_redis_info(text: str) -> RedisInfo:
    """The text of ``INFO`` -> its ``key:value`` fields and the keyspace per database."""
    fields: dict[str, str] = {}
    keyspace: dict[str, KeyspaceDb] = {}
    sections: set[str] = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
            sections.add(section)
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ParseError(f"redis INFO: line without ':': {line[:60]!r}")
        if section == "Keyspace":
            keyspace[key] = _keyspace_db(key, value)
        else:
            fields[key] = value
    missing = [s for s in _REQUIRED_SECTIONS if s not in sections]
    if missing:
        raise ParseError(f"redis INFO: sections missing (truncated?): {', '.join(missing)}")
    for key in ("redis_version", "uptime_in_seconds", "used_memory"):
        if key not in fields:
            raise ParseError(f"redis INFO: no {key}")
    return RedisInfo(fields, keyspace)


def _keyspace_db(db: str, value: str) -> KeyspaceDb:
    # db0:keys=3,expires=1,avg_ttl=99950
    try:
        parts = dict(item.split("=", 1) for item in value.split(","))
        return KeyspaceDb(int(parts["keys"]), int(parts["expires"]), int(parts.get("avg_ttl", 0)))
    except (ValueError, KeyError):
        raise ParseError(f"redis INFO: bad keyspace line {db}:{value[:60]!r}") from None


# INFO field -> (metric, help, scale). Gauges, then counters: redis_exporter's names.
GAUGES = {
    "uptime_in_seconds": ("redis_uptime_in_seconds", "Seconds since the server started.", 1),
    "process_id": ("redis_process_id", "Process id of the server.", 1),
    "connected_clients": ("redis_connected_clients", "Client connections.", 1),
    "blocked_clients": ("redis_blocked_clients", "Clients blocked in a blocking call.", 1),
    "used_memory": ("redis_memory_used_bytes", "Bytes allocated by Redis.", 1),
    "used_memory_rss": ("redis_memory_used_rss_bytes", "Resident set size of the server.", 1),
    "used_memory_peak": ("redis_memory_used_peak_bytes", "Peak of used_memory.", 1),
    "used_memory_lua": ("redis_memory_used_lua_bytes", "Bytes used by the Lua engine.", 1),
    "maxmemory": ("redis_memory_max_bytes", "The maxmemory setting (0: no limit).", 1),
    "total_system_memory": (
        "redis_total_system_memory_bytes",
        "Memory of the host Redis runs on.",
        1,
    ),
    # INFO has it from Redis 7.0 on (redis_exporter reads it with CONFIG GET maxclients).
    "maxclients": ("redis_config_maxclients", "The maxclients setting.", 1),
    "mem_fragmentation_ratio": (
        "redis_mem_fragmentation_ratio",
        "used_memory_rss / used_memory.",
        1,
    ),
    "loading": ("redis_loading_dump_file", "Whether a dump file is being loaded.", 1),
    "rdb_changes_since_last_save": (
        "redis_rdb_changes_since_last_save",
        "Changes since the last RDB save.",
        1,
    ),
    "rdb_bgsave_in_progress": ("redis_rdb_bgsave_in_progress", "Whether a BGSAVE runs.", 1),
    "rdb_last_save_time": (
        "redis_rdb_last_save_timestamp_seconds",
        "Time of the last successful RDB save.",
        1,
    ),
    "aof_enabled": ("redis_aof_enabled", "Whether AOF persistence is on.", 1),
    "connected_slaves": ("redis_connected_slaves", "Connected replicas.", 1),
    "master_repl_offset": ("redis_master_repl_offset", "Replication offset.", 1),
    "pubsub_channels": ("redis_pubsub_channels", "Pub/sub channels with subscribers.", 1),
    "latest_fork_usec": ("redis_latest_fork_seconds", "Duration of the latest fork.", 1e-6),
}
COUNTERS = {
    "total_connections_received": (
        "redis_connections_received_total",
        "Connections accepted.",
        1,
    ),
    "total_commands_processed": ("redis_commands_processed_total", "Commands processed.", 1),
    "total_net_input_bytes": ("redis_net_input_bytes_total", "Bytes read from the network.", 1),
    "total_net_output_bytes": ("redis_net_output_bytes_total", "Bytes written.", 1),
    "rejected_connections": (
        "redis_rejected_connections_total",
        "Connections rejected for maxclients.",
        1,
    ),
    "expired_keys": ("redis_expired_keys_total", "Keys expired.", 1),
    "evicted_keys": ("redis_evicted_keys_total", "Keys evicted for maxmemory.", 1),
    "keyspace_hits": ("redis_keyspace_hits_total", "Successful key lookups.", 1),
    "keyspace_misses": ("redis_keyspace_misses_total", "Failed key lookups.", 1),
    "used_cpu_sys": ("redis_cpu_sys_seconds_total", "System CPU consumed.", 1),
    "used_cpu_user": ("redis_cpu_user_seconds_total", "User CPU consumed.", 1),
    "used_cpu_sys_children": (
        "redis_cpu_sys_children_seconds_total",
        "System CPU consumed by children.",
        1,
    ),
    "used_cpu_user_children": (
        "redis_cpu_user_children_seconds_total",
        "User CPU consumed by children.",
        1,
    ),
}
# INFO fields that say ok / err.
STATUS = {
    "rdb_last_bgsave_status": ("redis_rdb_last_bgsave_status", "Last BGSAVE succeeded (1)."),
    "aof_last_bgrewrite_status": (
        "redis_aof_last_bgrewrite_status",
        "Last AOF rewrite succeeded (1).",
    ),
    "aof_last_write_status": ("redis_aof_last_write_status", "Last AOF write succeeded (1)."),
}
INSTANCE_LABELS = (
    "maxmemory_policy",
    "os",
    "process_id",
    "redis_build_id",
    "redis_mode",
    "redis_version",
    "role",
    "run_id",
    "tcp_port",
)


def info_metrics(
    target: str, info: RedisInfo, slowlog_length: int | None, databases: int | None
) -> list[Metric]:
    """Map parsed ``INFO`` (and the optional extras) to metric families labelled ``target``."""
    out: list[Metric] = []
    t = [target]
    for table, kind in ((GAUGES, GaugeMetricFamily), (COUNTERS, CounterMetricFamily)):
        for key, (name, doc, scale) in table.items():
            raw = info.fields.get(key)
            if raw is None:
                continue
            try:
                value = float(raw) * scale
            except ValueError:
                raise ParseError(f"redis INFO: {key}={raw[:40]!r} is not a number") from None
            fam = kind(name, doc, labels=["target"])
            fam.add_metric(t, value)
            out.append(fam)
    for key, (name, doc) in STATUS.items():
        if key in info.fields:
            fam = GaugeMetricFamily(name, doc, labels=["target"])
            fam.add_metric(t, 1 if info.fields[key] == "ok" else 0)
            out.append(fam)
    if "master_link_status" in info.fields:  # replicas only
        fam = GaugeMetricFamily(
            "redis_master_link_up", "The replica's link to its master is up (1).", labels=["target"]
        )
        fam.add_metric(t, 1 if info.fields["master_link_status"] == "up" else 0)
        out.append(fam)

    names = list(info.keyspace)
    if databases is not None:
        names += [f"db{i}" for i in range(databases) if f"db{i}" not in info.keyspace]
    empty = KeyspaceDb(0, 0, 0)
    keys = GaugeMetricFamily("redis_db_keys", "Keys per database.", labels=["target", "db"])
    expiring = GaugeMetricFamily(
        "redis_db_keys_expiring", "Keys with an expiry per database.", labels=["target", "db"]
    )
    ttl = GaugeMetricFamily(
        "redis_db_avg_ttl_seconds", "Average TTL of keys with an expiry.", labels=["target", "db"]
    )
    for db in names:
        entry = info.keyspace.get(db, empty)
        keys.add_metric([target, db], entry.keys)
        expiring.add_metric([target, db], entry.expires)
        if db in info.keyspace:
            ttl.add_metric([target, db], entry.avg_ttl_ms / 1000.0)
    out += [keys, expiring, ttl]

    if slowlog_length is not None:
        out.append(
            GaugeMetricFamily("redis_slowlog_length", "Entries in the slow log.", labels=["target"])
        )
        out[-1].add_metric(t, slowlog_length)
    instance = GaugeMetricFamily(
        "redis_instance_info",
        "Information about the Redis instance.",
        labels=["target", *INSTANCE_LABELS],
    )
    instance.add_metric([target, *(info.fields.get(k, "") for k in INSTANCE_LABELS)], 1)
    out.append(instance)
    return out


class RedisCollector(TargetCollector):
    name = "redis"

    def __init__(self, target: RedisTarget) -> None:
        super().__init__(target.name)
        self.config = target
        self._client: redis.Redis | None = None
        self._password: str | None = None

    def _connect(self, timeout: float) -> redis.Redis:
        password = read_password(self.config)
        if self._client is not None and password == self._password:
            return self._client
        self.close()
        host, _, port = self.config.address.rpartition(":")
        tls = self.config.tls
        kwargs: dict = {}
        if tls is not None:
            kwargs = {
                "ssl": True,
                "ssl_ca_certs": str(tls.ca_file) if tls.ca_file else None,
                "ssl_certfile": str(tls.cert_file) if tls.cert_file else None,
                "ssl_keyfile": str(tls.key_file) if tls.key_file else None,
                "ssl_cert_reqs": ssl.CERT_NONE if tls.insecure_skip_verify else ssl.CERT_REQUIRED,
                "ssl_check_hostname": not tls.insecure_skip_verify,
            }
        client = redis.Redis(
            host=host.strip("[]"),
            port=int(port),
            username=self.config.user,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            protocol=2,  # RESP2: Redis < 6 has no HELLO
            client_name="sscp-ops-exporter",
            **kwargs,
        )
        client.set_response_callback("INFO", lambda response, **_: response)
        self._client, self._password = client, password
        return client

    def scrape(self, timeout: float) -> Iterable[Metric]:
        timeout = self.io_timeout(timeout, self.config.timeout)
        client = self._connect(timeout)
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("INFO")
        pipe.execute_command("SLOWLOG", "LEN")
        pipe.execute_command("CONFIG", "GET", "databases")
        try:
            info_text, slowlog, config = pipe.execute(raise_on_error=False)
        except redis.AuthenticationError:
            raise TargetUnavailable(f"{self.config.address}: authentication failed") from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise TargetUnavailable(f"{self.config.address}: {_reason(exc)}") from None
        if isinstance(info_text, redis.AuthenticationError | redis.ResponseError):
            # NOAUTH / WRONGPASS / NOPERM arrive as error replies of the pipeline; Redis' error
            # texts never repeat the password
            raise TargetUnavailable(f"{self.config.address}: {str(info_text)[:120]}")
        if not isinstance(info_text, str):
            raise ParseError(f"redis INFO: unexpected reply type {type(info_text).__name__}")
        info = parse_redis_info(info_text)
        slowlog_length = slowlog if isinstance(slowlog, int) else None
        databases = None  # CONFIG may be disabled or renamed: then only databases with keys
        raw = config.get("databases") if isinstance(config, dict) else None
        if isinstance(config, list) and len(config) == 2:
            raw = config[1]
        if raw is not None:
            try:
                databases = int(raw)
            except ValueError:
                raise ParseError(f"redis CONFIG GET databases: {str(raw)[:40]!r}") from None
        return info_metrics(self.target or "", info, slowlog_length, databases)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(". ")[0] if text else type(exc).__name__


def build(config: Config) -> list[Collector]:
    return [RedisCollector(target) for target in config.targets.redis]
