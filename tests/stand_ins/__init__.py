"""Loopback HTTP servers shaped like the remote systems the connectors talk to.

Each answers with payloads, paging, errors and rate-limit answers as the vendor documents
them, so connector tests exercise real HTTP without a Magento, Drupal or Exact Online.
"""
