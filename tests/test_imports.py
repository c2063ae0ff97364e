"""ARCHITECTURE.md's import rules, checked from the code's own imports rather than by reading.

Two kinds of check, as Tornado's ``import_test`` does: every ``import``
statement of every module (at any depth, lazy ones included) against the
rules of its package, and fresh interpreters that import whole packages and
look at what came in with them (torch, gmqtt).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "detection", "events", "ipc", "daemon", "web")
HEAVY = ("torch", "torchvision", "torchao")
TORCH_BACKENDS = ("detection/torchvision", "detection/ssdlite")
"""The only modules that import torch: the torchvision detectors' backend and ssdlite-people's."""
TORCH_FREE_IN_BACKENDS = ("graphdef", "constfold", "spec")
"""ssdlite-people's graph reading, which the registry's checks use in processes that never run a model."""


def _in_backend(path: Path) -> bool:
    return str(path.relative_to(REPO)).startswith(tuple(backend + "/" for backend in TORCH_BACKENDS))


ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "ipc": set(),
    "detection": set(),
    "events": {
        "detectord.detection.geometry",
        "detectord.detection.tracking",
        "detectord.detection.types",
        "detectord.contract.names",
        "detectord.contract.payloads",
        "detectord.contract.scene",
    },
    "web": {"detectord.contract"},
    "daemon": {f"detectord.{package}" for package in PACKAGES},
}
"""What each package may import of the others: a name allows itself and everything under it."""


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "detectord." + ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def _allowed(imported: str, rules: set[str]) -> bool:
    return any(imported == rule or imported.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(REPO)))
def test_each_module_imports_only_what_its_package_may(path: Path) -> None:
    package = path.relative_to(REPO).parts[0]
    own = f"detectord.{package}"
    wrong = []
    for imported in _imports(path):
        top = imported.split(".")[0]
        if top in HEAVY and (not _in_backend(path) or path.stem in TORCH_FREE_IN_BACKENDS):
            wrong.append(f"{imported} (only {' and '.join(TORCH_BACKENDS)} import torch)")
        if top != "detectord" or imported == "detectord" or _allowed(imported, {own}):
            continue
        if not _allowed(imported, ALLOWED[package]):
            wrong.append(imported)
    assert not wrong, f"{path.relative_to(REPO)} breaks ARCHITECTURE.md's import rules: {sorted(set(wrong))}"


def _loaded_after(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(' '.join(m for m in {watched!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_no_process_but_inference_loads_torch() -> None:
    """Every module outside the torch backend, imported together: the supervisor, capture and publish
    stages, the viewer and the command line load no torch (the ``tune`` command runs a model, like
    inference, and imports the backend at its top)."""
    modules = [
        _module_name(path)
        for path in _modules()
        if (not _in_backend(path) or path.stem in TORCH_FREE_IN_BACKENDS) and path.name != "__main__.py"
    ]
    modules.remove("detectord.daemon.cli.tune")
    modules += ["detectord.detection.torchvision", "detectord.detection.ssdlite"]
    assert _loaded_after(modules, HEAVY) == []


def test_the_event_logic_and_the_contract_vocabulary_load_neither_torch_nor_gmqtt() -> None:
    assert _loaded_after(["detectord.events", "detectord.contract", "detectord.detection"], (*HEAVY, "gmqtt")) == []


def test_the_rule_checker_sees_lazy_and_relative_imports() -> None:
    """A check that cannot fail proves nothing: the parser must find an import inside a function."""
    path = REPO / "detection" / "registry.py"
    assert "detectord.detection.devices" in _imports(path)
    assert any(name.startswith("detectord.detection.torchvision.models") for name in _imports(
        REPO / "detection" / "torchvision" / "__init__.py"
    ))  # fmt: skip
