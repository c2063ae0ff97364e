"""``python -m detectord.web``: the same as ``detector-web``."""

from .cli import entry_point

if __name__ == "__main__":
    entry_point()
