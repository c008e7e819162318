"""The ledger: the SQLite store, row states and their transitions, the lock."""
