"""The analysts' tools: simulate a fact, run scenario files, back-test a changed rule set.

All three run the real engine and the actions' own logic and store nothing.
"""
