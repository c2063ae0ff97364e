"""Log lines a user reads: ``detectord: warning: …``, one line each, no tracebacks unless -vv."""

from __future__ import annotations

import logging
import sys


class _Formatter(logging.Formatter):
    def __init__(self, stage: str | None) -> None:
        super().__init__()
        self._prefix = f"detectord[{stage}]" if stage else "detectord"

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        text = f"{self._prefix}: {level}{record.getMessage()}"
        if record.exc_info and logging.getLogger().isEnabledFor(logging.DEBUG):
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: int, stage: str | None = None) -> None:
    """Route every log record to stderr in the user-facing format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(stage))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
