"""Service layer: the one place that implements operations on profiles.

SOAP (:mod:`hub.soap`) and REST (:mod:`hub.api_profiles`) are thin adapters over
:class:`hub.services.profiles.ProfileService`, so the two cannot drift apart in what they
accept, what they do, or which errors they give.
"""
