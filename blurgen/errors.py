"""Errors that a user can cause and fix.

The CLI prints a `BlurgenError` as one line and exits with status 2; anything else is a bug
and keeps its traceback.
"""


class BlurgenError(Exception):
    """Bad input: a missing path, a bad config value, an unreadable file."""


class ConfigError(BlurgenError):
    """A config key or value that cannot be used; the message names the key."""


class ShardError(BlurgenError):
    """A shard or manifest that is missing, corrupt or disagrees with its manifest."""
