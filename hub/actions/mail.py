"""Old job path of ``send_mail``, kept for jobs already in Redis.

RQ stores a job's function by dotted path; batches and follow-ups enqueued before the layout
by concept name ``hub.actions.mail.send_mail``. New jobs use :mod:`hub.actions.send_mail`.
"""

from __future__ import annotations

from hub.actions.send_mail import send_mail

__all__ = ["send_mail"]
