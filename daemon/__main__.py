"""``python -m detectord.daemon``: the same as the ``detectord`` command."""

from .cli import entry_point

if __name__ == "__main__":
    entry_point()
