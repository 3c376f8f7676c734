"""Mail: delivery to an SMTP relay or the outbox, and who may get which kind of mail."""
