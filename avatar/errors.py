"""Errors a user caused: the entry points print them as one line and exit non-zero."""


class AvatarError(Exception):
    """Bad input (config, data, plugin name): one clear line, never a traceback."""


class DataError(AvatarError):
    """Missing or malformed data; the message names the file (and line) at fault."""
