"""Plain events for Qt-free models: views connect callbacks, models emit (napari's evented-model idea, minimal)."""

from collections.abc import Callable


class Event:
    def __init__(self):
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> None:
        self._callbacks.append(callback)

    def emit(self, value=None) -> None:
        for callback in list(self._callbacks):
            callback(value)


class Events:
    """A named group of events: `Events("jobs", "variants").jobs.connect(...)`."""

    def __init__(self, *names: str):
        for name in names:
            setattr(self, name, Event())
