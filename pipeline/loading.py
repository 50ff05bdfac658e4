"""Loading configs: YAML file + ``--set key.path=value`` overrides -> a validated config model.

The one place both jobs read their config. Errors are ``ConfigError`` naming every bad key path
and what was expected (an unknown key also lists the keys allowed there), raised before
anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .config import FilterJobConfig, JobConfig


class ConfigError(ValueError):
    """A config that cannot run. The message names every bad key path."""


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "value_error":  # our validators' messages already say what was found
            msg = msg.removeprefix("Value error, ")
        elif e["type"] == "literal_error":
            msg = f"{msg}, got {e['input']!r}"
        elif "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict):
            msg = f"{msg}, got {e['input']!r}"
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names allowed at ``loc`` (for 'unknown key' errors)."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or (ann,)
        nxt = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], parsed YAML value)."""
    if "=" not in item:
        raise ConfigError(f"--set expects key.path=value, got {item!r}")
    key, _, raw = item.partition("=")
    if not key.strip():
        raise ConfigError(f"--set expects key.path=value, got {item!r}")
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            if isinstance(node, list):  # a list item by index: generation.modes.0.thinking_budget
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {item!r}: {part!r} is not an index of that list (0-{len(node) - 1})")
                node = node[int(part)]
                continue
            if not isinstance(node.setdefault(part, {}), (dict, list)):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = node[part]
        if isinstance(node, list):
            if not path[-1].isdigit() or int(path[-1]) >= len(node):
                raise ConfigError(f"--set {item!r}: {path[-1]!r} is not an index of that list")
            node[int(path[-1])] = value
        else:
            node[path[-1]] = value
    return data


def _read(path: str | Path | None) -> dict:
    if path is None:
        raise ConfigError("no config given")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _validate(model: type[BaseModel], data: dict, path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        extras = [e for e in err.errors() if e["type"] == "extra_forbidden"]
        hint = ""
        if extras:
            loc = extras[0]["loc"]
            allowed = _allowed_keys(model, loc)
            if allowed:
                hint = f"\n  allowed keys at {'.'.join(map(str, loc[:-1])) or '<root>'}: {', '.join(allowed)}"
        raise ConfigError(f"invalid config {path or ''}:\n{_format_errors(err)}{hint}") from None


def load_config(path: str | Path | None = None, overrides: list[str] = (), data: dict | None = None) -> JobConfig:
    """Load and validate a generation job config. Raises ``ConfigError`` naming every bad key path."""
    data = _read(path) if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return _validate(JobConfig, apply_overrides(data, list(overrides)), path)


def load_filter_config(path: str | Path, overrides: list[str] = ()) -> FilterJobConfig:
    """The config of ``jobs.filter``: a filter config (``filters``, ``dialect``, ``ray``), or a
    generation job config, of which its ``filters``, ``teacher.dialect`` and ``ray`` are used."""
    data = _read(path)
    if "teacher" in data or "input" in data:  # a generation job config: take what filtering needs
        cfg = load_config(path, overrides)
        return FilterJobConfig(
            filters=cfg.filters, dialect=cfg.teacher.dialect, ray=cfg.ray, rows_per_file=cfg.output.rows_per_file
        )
    return _validate(FilterJobConfig, apply_overrides(data, list(overrides)), path)
