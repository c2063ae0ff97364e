"""Loading configuration dataclasses from TOML and command-line overrides, and writing them back.

One path for every command: a TOML file (if any) becomes a nested dict,
flags override dotted keys in it, and the dict is converted field by field
into the frozen dataclasses of ``detectord.daemon.config``, where each one
checks its own values. Unknown keys, wrong types and bad values all raise
ConfigError naming the key. ``to_toml`` writes a configuration back as a
file the daemon reads (the demo hands its daemon one).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from detectord.contract import is_valid_name
from detectord.daemon.config import ConfigError

T = TypeVar("T")
UTF8_BOM = b"\xef\xbb\xbf"
"""What some editors (Windows Notepad) put before UTF-8 text; TOML has no use for it, so it is skipped."""


MAX_CONFIG_BYTES = 1024 * 1024
"""A configuration file is kilobytes; more is not one (and is never read whole)."""
MAX_DEPTH = 32
"""Tables and arrays nested deeper than this are no configuration of detectord's (its deepest, a zone's
points, is four)."""


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` nests tables or arrays more than ``limit`` deep (walked without recursion)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                pending.append((child, depth + 1))
    return False


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``MAX_CONFIG_BYTES``: a FIFO, a device or a
    socket would block or never end, so it is refused before a byte is read (opened without blocking)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path} is not a regular file (a FIFO, a device or a socket); give a TOML file")
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a configuration file")
    return data


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = _read_regular(path).removeprefix(UTF8_BOM).decode("utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {path}") from None
    except RecursionError:
        raise ConfigError(f"{path}: tables or arrays nested too deeply to read") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (a TOML file is UTF-8)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if _depth_exceeds(data, MAX_DEPTH):
        raise ConfigError(f"{path}: tables or arrays nested more than {MAX_DEPTH} deep; not a configuration")
    return data


def read_tomls(
    paths: list[Path], check: Callable[[Path, dict[str, Any]], None] = lambda path, data: None
) -> dict[str, Any]:
    """Several files as one: each later file's settings override the earlier ones', table by table
    (``--config /etc/detector/detector.toml --config tune.toml``); ``check`` sees each file as read."""
    data: dict[str, Any] = {}
    for path in paths:
        part = read_toml(path)
        check(path, part)
        _merge(data, part)
    return data


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "mqtt.port", 1884)``: the command line overriding one key of the file."""
    *sections, last = key.split(".")
    for section in sections:
        data = data.setdefault(section, {})
    data[last] = value


def _convert(value: Any, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _convert(value, inner, key)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            tables = isinstance(item, type) and dataclasses.is_dataclass(item)
            raise ConfigError(
                f"{key}: expected {f'an array of tables ([[{key}]])' if tables else 'an array'}, got {value!r}"
            )
        return tuple(_convert(entry, item, _item_key(key, i, entry)) for i, entry in enumerate(value))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table of settings, got {value!r}")
        return build(kind, value, key)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if kind is str:
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("source.uri"):
            return str(value)  # a camera index written as a number
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if kind is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{key}: unsupported setting type {kind!r}")


def _item_key(key: str, index: int, entry: Any) -> str:
    """How a message names one table of an array: by its ``name`` when it has a usable one."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"{key}.{name}" if isinstance(name, str) and is_valid_name(name) else f"{key}[{index}]"


def merge_overrides(data: dict[str, Any], array: str, tables: tuple[str, ...]) -> None:
    """In each table of ``array``, complete the ``tables`` it overrides with the top level's settings.

    ``[cameras.main_person] score_threshold = 0.8`` changes that one setting
    for that camera; the camera keeps the daemon's other main_person settings.
    """
    for entry in data.get(array, ()):
        if not isinstance(entry, dict):
            continue
        for table in tables:
            if isinstance(entry.get(table), dict) and isinstance(data.get(table, {}), dict):
                entry[table] = {**data.get(table, {}), **entry[table]}


def build(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """An instance of dataclass ``cls`` from ``data``; every problem is a ConfigError naming its key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown setting {key!r} (known{' in ' + where if where else ''}: {known})")
    values = {name: _convert(value, hints[name], f"{where}.{name}" if where else name) for name, value in data.items()}
    missing = [name for name, f in fields.items() if name not in values and _default(f) is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where or 'configuration'}: {missing[0]} is not set")
    try:
        return cls(**values)
    except ValueError as exc:  # ConfigError, or a dataclass of detection or contract validating itself
        raise ConfigError(_full_key(where, str(exc))) from None


def _full_key(where: str, text: str) -> str:
    """A message about a table's setting, named from the top: ``frame.width …`` in ``cameras.a`` is about
    ``cameras.a.frame.width``."""
    if not where or text.startswith(where):
        return text
    parent, _, last = where.rpartition(".")
    if parent and text.startswith(last + "."):
        return f"{parent}.{text}"
    return f"{where}: {text}"


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # finite: configuration refuses nan and inf
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a TOML basic string
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item, key) for item in value) + "]"
    raise ConfigError(f"{key}: cannot write {value!r} to TOML")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def to_toml(config: Any, where: str = "") -> str:
    """A configuration dataclass as TOML that ``build`` turns back into an equal one (defaults left out)."""
    lines: list[str] = []
    tables: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{where}.{f.name}" if where else f.name
        if value is None or value == _default(f):
            continue
        if isinstance(value, tuple) and value and all(dataclasses.is_dataclass(item) for item in value):
            tables += [f"\n[[{key}]]\n" + to_toml(item, key) for item in value]
        elif dataclasses.is_dataclass(value):
            tables.append(f"\n[{key}]\n" + to_toml(value, key))
        else:
            lines.append(f"{f.name} = {_toml_value(value, key)}")
    return "\n".join(lines) + ("\n" if lines else "") + "".join(tables)
