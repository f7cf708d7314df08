"""The export package's errors, in a module of their own so the `foley` command can catch them without loading
the loudness meters."""


class ExportError(Exception):
    """A stem cannot be written; the message names the file and the fix."""
