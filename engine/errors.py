"""Engine exceptions: one base class, specific subclasses whose messages name the problem and the fix."""


class FoleyError(Exception):
    """Base class of every error the engine reports to a user."""


class InputVideoError(FoleyError):
    """The video file or the requested range cannot be used."""


class ModelNotInstalledError(FoleyError):
    """The requested model is not in the user's model directory."""


class CheckpointError(FoleyError):
    """A checkpoint file is missing, corrupt, foreign or does not match the model's layout."""


class UnsupportedRangeError(FoleyError):
    """The range is valid but longer than what this engine version can generate in one piece."""
