"""What every benchmark does with its results: the machine in the header, JSON named after the machine."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detectord.detection.devices import describe_machine, machine_tag


def machine_line(results: dict[str, Any]) -> str:
    """The header line every table starts with: the CPU, its features that decide speed, and the rest."""
    flags = ", ".join(results["cpu_flags"]) or "none of interest"
    return f"machine: {results['machine']}; CPU flags: {flags}"


def write_json(destination: Path | None, bench: str, results: dict[str, Any]) -> Path | None:
    """``--json FILE`` writes FILE; ``--json DIR`` writes ``DIR/<bench>-<machine tag>.json``
    (``quantization-x86_64-amx-2cpu.json``), so that results of different machines sit side by side."""
    if destination is None:
        return None
    path = destination / f"{bench}-{machine_tag()}.json" if destination.is_dir() else destination
    path.write_text(json.dumps({**describe_machine(), **results}, indent=2))
    return path


def report(
    results: dict[str, Any], bench: str, destination: Path | None, format_table: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Print the table, write the JSON (``write_json``), and hand the results back to the caller."""
    sys.stdout.write(format_table(results) + "\n")
    write_json(destination, bench, results)
    return results


def table_head(columns: Sequence[str]) -> list[str]:
    """A Markdown table's header and alignment rows: the first column left-aligned, the numbers right."""
    return ["| " + " | ".join(columns) + " |", "| --- |" + " ---: |" * (len(columns) - 1)]
