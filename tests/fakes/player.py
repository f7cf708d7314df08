"""A `Player` that records what the panel asked it to play; the test moves its clock."""

import numpy as np


class RecordingPlayer:
    def __init__(self):
        self.calls: list[tuple] = []
        self.audio: np.ndarray | None = None
        self._position = 0
        self._playing = False

    def play(self, audio, rate, start=0, loop=False):
        self.calls.append(("play", audio, rate, start, loop))
        self.audio, self._position, self._playing = audio, start, True

    def switch(self, audio):
        self.calls.append(("switch", audio, self._position))
        self.audio = audio

    def stop(self):
        self.calls.append(("stop",))
        self._playing = False

    def advance(self, samples: int) -> None:
        self._position += samples

    def position(self):
        return self._position

    def playing(self):
        return self._playing

    def level(self):
        return float(np.abs(self.audio[self._position : self._position + 800]).max(initial=0.0))
