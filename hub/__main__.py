"""``python -m hub``: the ``hub`` command line."""

from hub.cli.main import main

main()
