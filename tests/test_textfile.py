"""The textfile collector: ``*.prom`` files of a directory (node_exporter's
``--collector.textfile.directory`` convention), so what ``sscp-ops review accounts
--metrics-file`` writes reaches Prometheus through the sscp-ops exporter with the shipped
config, and ``AccountReviewOverdue`` can fire (issue 16 item 17)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import requests
import yaml
from fx_prometheus import shipped_config
from helpers import parse_exposition, require_binary, sscp_ops_cmd

from exporters.textfile import TextfileCollector
from sscp_ops.config import parse_config

REVIEW_METRIC = "sscp_account_review_last_run_timestamp_seconds"


def _samples(collector: TextfileCollector) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in collector.collect(5.0):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_reads_prom_files_and_flags_a_broken_one(tmp_path: Path) -> None:
    (tmp_path / "a.prom").write_text("# TYPE x_total counter\nx_total 3\n")
    (tmp_path / "b.prom").write_text('y{kind="k"} 2\n')
    (tmp_path / "c.prom").write_text("this is { not metrics\n")
    (tmp_path / "ignored.txt").write_text("z 1\n")
    (tmp_path / ".d.prom.tmp").write_text("w 1\n")
    samples = _samples(TextfileCollector(tmp_path))
    assert samples[("x_total", frozenset())] == 3
    assert samples[("y", frozenset({("kind", "k")}))] == 2
    assert ("z", frozenset()) not in samples
    assert samples[("node_textfile_scrape_error", frozenset())] == 1
    mtimes = [k for k in samples if k[0] == "node_textfile_mtime_seconds"]
    assert sorted(dict(k[1])["file"] for k in mtimes) == ["a.prom", "b.prom"]


def test_missing_directory_is_not_an_error(tmp_path: Path) -> None:
    samples = _samples(TextfileCollector(tmp_path / "nowhere"))
    assert samples == {("node_textfile_scrape_error", frozenset()): 0}


def test_default_directory_is_where_the_docs_tell_the_review_to_write() -> None:
    config = parse_config("{}", "<test>")
    assert str(config.exporter.textfile_directory) == "/var/lib/prometheus/node-exporter"
    docs = (Path(__file__).parents[1] / "docs" / "security.md").read_text()
    assert f"--metrics-file {config.exporter.textfile_directory}/account_review.prom" in docs


def test_review_to_exporter_to_prometheus_to_alert(
    os_tree: Path, tmp_path: Path, exporter, prometheus
) -> None:
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    cfg = tmp_path / "review.yml"
    cfg.write_text("account_review: {staff: [{name: 张伟, os: [zhangwei]}]}\n")
    review = subprocess.run(
        sscp_ops_cmd(
            "review",
            "accounts",
            "--config.file",
            str(cfg),
            "--root",
            str(os_tree),
            "--no-mysql",
            "--no-tokens",
            "--metrics-file",
            str(textfiles / "account_review.prom"),
        ),  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,  # fmt: skip
    )
    assert review.returncode == 0, review.stderr
    base = exporter(
        textwrap.dedent(f"""\
        exporter:
          textfile_directory: {textfiles}
          collectors: {{host: false}}
        """)
    )
    exposed = parse_exposition(requests.get(f"{base}/metrics", timeout=10).text)
    last_run = exposed[(REVIEW_METRIC, frozenset())]
    assert exposed[("node_textfile_scrape_error", frozenset())] == 0
    assert exposed[("sscp_exporter_collector_success", frozenset({("collector", "textfile")}))]

    prom = prometheus(shipped_config({"sscp-ops": [base]}))
    (series,) = prom.wait_for(REVIEW_METRIC)
    assert float(series["value"][1]) == last_run
    labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
    assert labels["job"] == "sscp-ops"

    # The shipped rule over the series as Prometheus stored it: quiet now, firing 100 days on.
    rules_file = Path(__file__).parents[1] / "rules" / "accounts.rules.yml"
    (rule,) = yaml.safe_load(rules_file.read_text())["groups"][0]["rules"]
    annotations = {
        k: v.replace("{{ $labels.instance }}", labels["instance"]).replace(
            "{{ $value | humanizeDuration }}", "110d 0h 0m 0s"
        )
        for k, v in rule["annotations"].items()
    }
    sel = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    test = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1d",
        "tests": [
            {
                "interval": "1d",
                "input_series": [{"series": REVIEW_METRIC + sel, "values": "0x120"}],
                "alert_rule_test": [
                    {"eval_time": "10d", "alertname": "AccountReviewOverdue", "exp_alerts": []},
                    {
                        "eval_time": "110d",
                        "alertname": "AccountReviewOverdue",
                        "exp_alerts": [
                            {
                                "exp_labels": {**labels, "severity": "warning"},
                                "exp_annotations": annotations,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "accounts.test.yml"
    path.write_text(yaml.safe_dump(test, allow_unicode=True))
    done = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # fmt: skip
    )
    assert done.returncode == 0, done.stdout + done.stderr
