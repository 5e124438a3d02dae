"""One YAML file configures the whole kit; it is loaded once into an immutable, validated object.

Each section has its own module in this package (``exporter``, ``targets``, ...); this module
holds the root model and the loader. A bad file raises :class:`ConfigError` whose message names
the file, the line where it can be found, the key path and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import ValidationError, model_validator

from sscp_ops.config.account_review import AccountReviewConfig
from sscp_ops.config.alertmanager import AlertmanagerConfig
from sscp_ops.config.backup import BackupConfig
from sscp_ops.config.base import Model
from sscp_ops.config.calendar import CalendarConfig
from sscp_ops.config.exporter import ExporterConfig
from sscp_ops.config.journeys import Journeys
from sscp_ops.config.logs import LogsConfig
from sscp_ops.config.report import ReportConfig
from sscp_ops.config.targets import TargetsConfig
from sscp_ops.config.tls_checks import TlsChecksConfig
from sscp_ops.config.webhook import WebhookConfig

__all__ = ["Config", "ConfigError", "load_config", "parse_config"]


class ConfigError(Exception):
    """A configuration file that cannot be used; ``str()`` is the one line shown to the user."""


class Config(Model):
    exporter: ExporterConfig = ExporterConfig()
    targets: TargetsConfig = TargetsConfig()
    calendar: CalendarConfig = CalendarConfig()
    report: ReportConfig = ReportConfig()
    tls_checks: TlsChecksConfig = TlsChecksConfig()
    account_review: AccountReviewConfig = AccountReviewConfig()
    webhook: WebhookConfig = WebhookConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    logs: LogsConfig | None = None
    backup: BackupConfig | None = None
    journeys: Journeys = []

    @model_validator(mode="after")
    def _journey_targets_free(self) -> Config:
        """A journey counted in availability is exported as probe target ``<name>``."""
        probes = {p.name for p in self.targets.probe}
        for i, journey in enumerate(self.journeys):
            if journey.availability and journey.name in probes:
                raise ValueError(
                    f"journeys[{i}].name: {journey.name!r} is also a targets.probe name; "
                    "a journey with availability: true is exported as that probe target"
                )
        return self


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _line_of(root: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the deepest node on ``loc`` found in the composed YAML tree."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _expected(err: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return msg
    got = err.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    return f"{msg[0].lower()}{msg[1:]}, got {shown}"


M = TypeVar("M", bound=Model)


def validate_yaml(
    text: str,
    source: str,
    model: type[M],
    not_mapping: str,
    *,
    empty_is_mapping: bool = True,
    loc_filter: Callable[[object], bool] | None = None,
) -> M:
    """Parse YAML ``text`` (duplicate keys refused) and validate it into ``model``; raise
    :class:`ConfigError` naming ``source``:line: key.path. ``not_mapping`` is the message when
    the top level is not a mapping (an empty text is ``{}`` when ``empty_is_mapping``);
    ``loc_filter`` drops parts of pydantic's error location (e.g. union member names)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML syntax error: {exc}") from None
    if data is None and empty_is_mapping:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {not_mapping}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(x for x in err["loc"] if loc_filter is None or loc_filter(x))
        line = _line_of(tree, loc)
        where = f"{source}:{line}" if line else source
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{where}: {_format_loc(loc)}: {_expected(err)}{more}") from None


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate YAML text into a :class:`Config`; raise :class:`ConfigError` on any problem."""
    return validate_yaml(text, source, Config, "expected a mapping of sections at the top level")


def load_config(path: str | Path | None) -> Config:
    """Load the file at ``path``; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc}") from None
    return parse_config(text, str(p))
