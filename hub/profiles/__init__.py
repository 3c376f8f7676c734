"""Profiles: the contact a fact is about, the service of REST and SOAP, search, timelines.

SOAP (:mod:`hub.soap`) and REST (:mod:`hub.api.profiles`) are thin adapters over
:class:`hub.profiles.service.ProfileService`, so the two cannot drift apart in what they
accept, what they do, or which errors they give.
"""
