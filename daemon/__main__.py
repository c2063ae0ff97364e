"""``python -m detectord.daemon``: the same as the ``detectord`` command."""

from .cli.main import entry_point

if __name__ == "__main__":
    entry_point()
