"""The message's life as values and ``now``: decisions without I/O, between the protocol core
(smppgw.smpp) and the asyncio drivers (pool, dispatcher, receiver, daemon).

Kept import-free like smppgw/__init__.py; no module here imports asyncio, socket, ssl,
sqlite3, threading, time or logging (tests/unit/test_sourcecode.py checks it).
"""
