"""Sending: the API client, the retry policy, one batch end to end."""
