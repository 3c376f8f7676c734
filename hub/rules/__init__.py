"""The rule language: what analysts write in ``rules/*.yaml`` and how it is matched.

``reader`` turns files into a :class:`~hub.rules.model.RuleSet` (every problem located),
``checks`` looks across a whole set, ``conditions`` is the condition tree and its Python
reading, ``compiler`` its durable_rules form, ``engine`` matches documents built by
``document``, ``history`` reads a profile's past, ``actions`` types the action registry.
"""
