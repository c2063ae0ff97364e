"""Configuration that cannot hang or crash the program (#35): every input is "OK" or one line with exit 2.

By hand: files that are not regular files (a FIFO blocks a reader forever, ``/dev/zero`` never ends), a
file too large, tables nested thousands deep (``RecursionError`` in the TOML parser), and polygons that
enclose no area or cross themselves. Then property-based (hypothesis): random bytes, and random TOML
documents built from the real schema's keys with wrong and extreme values, through the same loading as
``--check-config``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectord.daemon.cli import get_args_parser, live_config
from detectord.daemon.config import ConfigError, DaemonConfig

REPO = Path(__file__).resolve().parents[3]
PEDESTRIANS = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
BOW_TIE = "[[0, 0], [100, 100], [100, 0], [0, 100]]"


def check_config(config: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--config", config, "--source", PEDESTRIANS, "--check-config"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def _bad_files(tmp_path: Path) -> dict[str, tuple[str, str]]:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 120_000)
    files = {"fifo": (str(fifo), "not a regular file"), "device": ("/dev/zero", "not a regular file")}
    files |= {"deep": (str(deep), "nested too deeply"), "big": (str(big), "larger than 1024 KiB")}
    polygons = {
        "bow-tie mask": (f"[motion]\nmask = [{BOW_TIE}]\n", "motion.mask: the polygon"),
        "line mask": ("[motion]\nmask = [[[0, 0], [50, 50], [100, 100]]]\n", "has no area"),
        "bow-tie zone": (f'[[zones]]\nname = "door"\npoints = {BOW_TIE}\n', "zone 'door': the polygon"),
    }
    for name, (text, message) in polygons.items():
        path = tmp_path / f"{name.replace(' ', '-')}.toml"
        path.write_text(text)
        files[name] = (str(path), message)
    return files


def test_what_is_no_configuration_file_is_one_line_and_exit_2_never_a_hang(tmp_path: Path) -> None:
    for name, (path, message) in _bad_files(tmp_path).items():
        done = check_config(path)
        assert done.returncode == 2, (name, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr


def _loaded(path: Path) -> None:
    """The configuration loading of ``--check-config``: returns, or raises ConfigError and nothing else."""
    try:
        live_config(get_args_parser().parse_args(["--config", str(path), "--source", PEDESTRIANS]), {})
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_are_a_configuration_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.toml"
    path.write_bytes(data)
    _loaded(path)


EXTREMES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    st.booleans(),
    st.lists(st.lists(st.floats(-1e9, 1e9) | st.integers(-5, 2000), max_size=3), max_size=5),
)
"""Values of the wrong type, out of range, empty, huge, NaN and infinite: whatever the key wants."""


def _schema(cls: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Documents of ``cls``'s keys (a dataclass of the configuration), each key optional, each value a
    nested table of its own keys where the field is a dataclass, or anything from ``EXTREMES``."""
    hints = typing.get_type_hints(cls)
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        nested = next((a for a in (kind, *typing.get_args(kind)) if dataclasses.is_dataclass(a)), None)
        if nested is not None and depth < 2:
            table = _schema(nested, depth + 1)
            optional[field.name] = st.lists(table, max_size=2) if typing.get_origin(kind) is tuple else table
        else:
            optional[field.name] = EXTREMES
    return st.fixed_dictionaries({}, optional=optional)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def to_document(data: dict[str, Any], prefix: str = "") -> str:
    """TOML text of ``data``: scalars first, then ``[tables]`` and ``[[arrays of tables]]``."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"[{prefix}{key}]\n" + to_document(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables += [f"[[{prefix}{key}]]\n" + to_document(item, f"{prefix}{key}.") for item in value]
        else:
            lines.append(f"{json.dumps(key)} = {_toml(value)}")
    return "\n".join(lines) + "\n" + "\n".join(tables)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_schema(DaemonConfig))
def test_documents_of_the_real_keys_with_hostile_values_are_ok_or_one_config_error(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    path = tmp_path / "schema.toml"
    path.write_text(to_document(document))
    _loaded(path)


@pytest.mark.parametrize(
    "polygon",
    [[(0, 0), (4, 0), (4, 4), (0, 4)], [(0, 0), (4, 0), (4, 4), (2, 1), (0, 4)], [(0.1, 0.2), (0.9, 0.1), (0.5, 0.9)]],
)
def test_simple_polygons_with_an_area_are_accepted(polygon: list[tuple[float, float]]) -> None:
    from detectord.detection.geometry import polygon_problem

    assert polygon_problem(polygon) is None
