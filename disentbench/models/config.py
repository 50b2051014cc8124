"""Strict model configs: a plain mapping (a TOML table, a checkpoint's stored dict) read into a frozen dataclass.

Every field of the dataclass is required unless it has a default; an unknown key, a missing key or a value of the
wrong type is a :class:`ConfigError` whose one-line message names where the mapping came from and the key.
Supported field types: ``int``, ``float`` (an int is accepted), ``bool``, ``str``, ``tuple[int, ...]``,
``tuple[float, ...]`` and ``X | None`` of those.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping


class ConfigError(ValueError):
    """A config that does not match its dataclass: unknown, missing or mistyped key."""


def _check_value(value: Any, kind: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _check_value(value, inner, where, key)
    if origin is tuple:
        item_kind = typing.get_args(kind)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: key {key!r} must be a list, got {value!r}")
        return tuple(_check_value(v, item_kind, where, key) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: key {key!r} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: key {key!r} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: key {key!r} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: key {key!r} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config field type {kind!r} for {key!r}")


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def parse_config(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """``cls(**data)`` after checking keys and types strictly (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _check_value(data[name], hints[name], where, name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key {name!r}")
    try:
        return cls(**values)
    except ValueError as exc:  # __post_init__ range checks
        raise ConfigError(f"{where}: {exc}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """The plain-data form of a config dataclass (tuples become lists), as stored in run folders and checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def choice(value: str, options: tuple[str, ...], key: str) -> None:
    """Raise ``ValueError`` (turned into a :class:`ConfigError` naming the file) unless ``value`` is an option."""
    if value not in options:
        raise ValueError(f"key {key!r} must be one of {', '.join(options)}, got {value!r}")
