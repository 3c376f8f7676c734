"""Configured connector instances: their tables, their encrypted secrets, their pulls.

The connector *types* (the plugin contract and the built-ins) live in the top-level
``connectors`` package; this package holds what an operator configured with them.
"""
