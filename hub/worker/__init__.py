"""The worker process: draining pending facts, evaluating them in batches, dispatching the
action jobs, the periodic sweep, and the start-up of worker and scheduler processes."""
