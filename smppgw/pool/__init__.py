"""The bind pool of one provider: slot.py keeps each configured bind up (connect → TLS →
bind → serve → backoff → again), pool.py chooses the bind for each submit and waits for
capacity. They talk through the small SlotOwner protocol, never through each other's privates.
"""
