"""Render the configuration reference (docs/config-reference.md) from the config models.

The reference is generated, never written by hand, so it cannot drift from what the loader
accepts: a test fails when the committed file differs from :func:`render_reference`.

    python -m sscp_ops.config.reference > docs/config-reference.md
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterator

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

HEADER = """# Configuration reference

Generated from the config schema by `python -m sscp_ops.config.reference`; do not edit by hand.
One YAML file configures the whole kit; every section is optional. Unknown keys are errors.
`[]` after a key means a list of entries with the keys listed under it.
"""


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (list, tuple, set):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        k, v = typing.get_args(annotation)
        return f"map {_type_name(k)} → {_type_name(v)}"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "section"
    name = getattr(annotation, "__name__", str(annotation))
    return {
        "str": "string",
        "float": "number",
        "int": "integer",
        "bool": "boolean",
        "Path": "path",
        "PosixPath": "path",
    }.get(name, name)


def _constraints(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sym in (
            ("gt", ">"),
            ("ge", "≥"),
            ("lt", "<"),
            ("le", "≤"),
            ("min_length", "min length"),
            ("max_length", "max length"),
            ("pattern", "pattern"),
        ):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} `{value}`" if attr == "pattern" else f"{sym} {value}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    default = info.default
    if default is PydanticUndefined and info.default_factory is not None:
        default = info.default_factory()
    if isinstance(default, BaseModel) or default is None:
        return "—" if default is None else "(section defaults)"
    return f"`{default!r}`" if not isinstance(default, str) else f"`{default}`"


def _rows(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}.{key}" if prefix else key
        nested = _models_in(info.annotation)
        is_list = typing.get_origin(info.annotation) is list or "list of" in _type_name(
            info.annotation
        )
        shown = f"{path}[]" if is_list and nested else path
        notes = "; ".join(p for p in (info.description or "", _constraints(info)) if p)
        row = f"| `{shown}` | {_type_name(info.annotation)} | {_default(info)} | {notes} |"
        yield row.replace("|", "\\|").replace("\\| ", "| ").replace(" \\|", " |")
        is_map = _type_name(info.annotation).startswith("map ")
        for sub in nested:
            yield from _rows(sub, f"{shown}.<key>" if is_map else shown)


def render_reference() -> str:
    from sscp_ops.config import Config

    out = [HEADER]
    for name, info in Config.model_fields.items():
        out.append(f"\n## `{name}:`\n")
        for sub in _models_in(info.annotation):
            doc = inspect.cleandoc(sub.__dict__.get("__doc__") or "")
            if doc:
                out.append(doc.split("\n\n")[0] + "\n")
            out.append("| key | type | default | notes |\n|---|---|---|---|")
            listed = "list of" in _type_name(info.annotation)
            out.extend(_rows(sub, f"{name}[]" if listed else name))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
