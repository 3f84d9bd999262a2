"""Thin drivers between the store, the bind pools and the outside: queues, futures, sockets
and store calls only; every decision about a message comes from smppgw.flow.

dispatcher: store → pool → store, per provider; receiver: deliver_sm/data_sm → store →
acknowledge; webhooks: the event log → HTTP; submission: requests → store; control: the
operator's cancel, retry and pause → store, dispatchers and submission. None of them imports
smppgw.api.
"""
