"""Every command the README shows parses with the real parsers, and the set-up block is what CI runs."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from detectord.daemon.cli import get_args_parser as detectord_parser
from detectord.web.cli import get_args_parser as web_parser

REPO = Path(__file__).resolve().parents[1]
NOT_OURS = ("./install.sh", ". .venv/bin/activate", "sudoedit", "journalctl", "systemctl", "jupyter", "-m pytest")


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", raw).strip()
            if line and not any(marker in line for marker in NOT_OURS):
                commands.append(line)
    return commands


def _words(command: str) -> list[str]:
    command = re.sub(r"\[[^\]]*\]", "", command)  # optional parts
    words = shlex.split(command)
    while words and words[0] in ("sudo",):
        words = words[1:]
    return words


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_parses(command: str) -> None:
    words = _words(command)
    program = Path(words[0]).name
    if program == "detectord" and "--version" in words:
        with pytest.raises(SystemExit) as done:
            detectord_parser().parse_args(words[1:])
        assert done.value.code == 0
    elif program == "detectord":
        detectord_parser().parse_args(words[1:])
    elif program == "detector-web":
        web_parser().parse_args(words[1:])
    elif program == "python" and words[1:2] == ["-m"] and words[2].startswith("bench."):
        module = importlib.import_module(words[2])
        module.get_args_parser().parse_args(words[3:])
        ran = subprocess.run(
            [sys.executable, "-m", words[2], "--help"], check=False, cwd=REPO, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert ran.returncode == 0, f"{words[2]} does not run as the README says: {ran.stderr[-400:]}"
    elif program == "pip" and words[1:2] == ["install"]:
        extras = re.findall(r"detectord\[([\w,]+)\]", command)
        assert extras, f"a pip command that installs no detectord extra: {command}"
        setup = (REPO / "setup.py").read_text()
        for extra in ",".join(extras).split(","):
            assert f'"{extra}": [' in setup, f"setup.py has no extra {extra!r}, which the README installs"
    else:
        pytest.fail(f"README command not checked by this test: {command}")


def test_ci_runs_the_readme_setup_block() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "<!-- ci: setup -->" in ci and "<!-- ci: setup -->" in (REPO / "README.md").read_text()
