"""The connectors that ship with the hub: Magento 2, Drupal and Exact Online.

Found like any plugin, through the ``hub.connectors`` entry points in ``pyproject.toml``.
"""
