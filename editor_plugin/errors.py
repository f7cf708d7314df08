"""Host bridge exceptions: one base class, specific subclasses whose messages name the problem and the fix."""


class HostError(Exception):
    """Base class of every error a host bridge reports to a user."""


class ProjectFormatError(HostError):
    """The project file cannot be read: corrupt, not a project, or a format version we do not support."""


class MissingMediaError(HostError):
    """A clip in the selection points at a media file that does not exist."""


class UnsupportedClipError(HostError):
    """A clip plays its media in a way the engine cannot follow (speed change, freeze frame, ...)."""


class SelectionError(HostError):
    """The selection is empty, holds no video, or is not on the timeline."""


class ProjectWriteError(HostError):
    """The project cannot be written (read-only file or folder); nothing was changed."""


class HostNotRunningError(HostError):
    """A live host (Resolve, Blender) is not reachable."""


class HostVersionError(HostError):
    """The running host is too old, or its edition does not allow what we need."""
