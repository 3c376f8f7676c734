"""The worker process: draining pending facts, evaluating them in batches, dispatching actions.

It also holds the periodic sweep, and the start-up of worker and scheduler processes.
"""
