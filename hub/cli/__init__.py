"""The ``hub`` command line.

:mod:`hub.cli.main` holds the group, :mod:`hub.cli.common` what every command shares, and
each other module one command group.
"""
