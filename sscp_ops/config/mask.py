"""The rules file of ``sscp-ops mask db`` (its own YAML file, not a section of the kit's config).

Shape (kept stable; the operations manual relies on it)::

    source: {address: "127.0.0.1:3306", user: reader, password_file: /etc/sscp-ops/src.pass,
             database: platform}
    target: {address: "127.0.0.1:3306", user: writer, password_file: /etc/sscp-ops/dst.pass,
             database: platform_test}
    key_file: /etc/sscp-ops/mask.key
    batch_size: 1000            # optional
    tables:
      customers: {phone: pseudonym, id_number: pseudonym, name: fake_name, address: mask}
      orders:    {customer_phone: pseudonym, note: null, channel: {fixed: "web"}}

Rules: ``mask``, ``pseudonym``, ``fake_name``, ``null`` (YAML ``null`` or the string
``"null"``), ``{fixed: VALUE}``. Columns not named are copied as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from sscp_ops.config.base import Model, SecretRef
from sscp_ops.config.targets import HostPort

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_$]+$")]


class FixedRule(Model):
    fixed: str | int | float | None


def _rule(value: Any) -> Any:
    if value is None:
        return "null"
    if value == "fixed":
        raise ValueError('fixed needs a value: write {fixed: "VALUE"}')
    return value


Rule = Annotated[
    Literal["mask", "pseudonym", "fake_name", "null"] | FixedRule, BeforeValidator(_rule)
]


class DbEndpoint(SecretRef):
    address: HostPort
    user: str
    database: Identifier


class MaskRules(Model):
    source: DbEndpoint
    target: DbEndpoint
    key_file: Path
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    tables: dict[Identifier, dict[Identifier, Rule]]


def load_mask_rules(path: str | Path) -> MaskRules:
    """Load and validate a rules file; raise ConfigError naming file:line: key.path."""
    # The loader and its error formatting live with the kit's config loader; reuse them.
    from sscp_ops.config import ConfigError, validate_yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read rules file: {exc.strerror or exc}") from None
    return validate_yaml(
        text,
        str(p),
        MaskRules,
        "expected a mapping with source, target, key_file, tables",
        empty_is_mapping=False,
        loc_filter=lambda x: not str(x).startswith(("literal[", "FixedRule")),
    )
