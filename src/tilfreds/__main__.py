"""``python -m tilfreds`` is the ``tilfreds`` command."""

from tilfreds.cli import app

app()
