"""Audition playback: the `Player` contract and its sounddevice implementation (the audio clock drives the picture)."""

import threading
from typing import Protocol

import numpy as np


class AudioUnavailable(Exception):
    """No way to play sound here; the message says why and what to install. Everything else keeps working."""


class Player(Protocol):
    def play(self, audio: np.ndarray, rate: int, start: int = 0, loop: bool = False) -> None: ...

    def switch(self, audio: np.ndarray) -> None: ...  # A/B: new audio, same position

    def stop(self) -> None: ...

    def position(self) -> int: ...  # samples played: the clock the picture follows

    def playing(self) -> bool: ...

    def level(self) -> float: ...  # peak of the last block, for the meter


class SoundDevicePlayer:
    """Plays float32 mono through PortAudio's default output; position advances in the audio callback."""

    def __init__(self):
        try:
            import sounddevice
        except OSError as exc:  # the PortAudio library itself is missing
            raise AudioUnavailable(f"Audio playback needs PortAudio ({exc}); install it (Debian/Ubuntu: "
                                   "apt-get install libportaudio2). Everything else works without it.") from None
        self._sd = sounddevice
        self._lock = threading.Lock()
        self._audio = np.zeros(0, np.float32)
        self._position = 0
        self._loop = False
        self._peak = 0.0
        self._stream = None

    def _callback(self, outdata, frames, _time, _status) -> None:
        with self._lock:
            out = np.zeros(frames, np.float32)
            filled = 0
            while filled < frames and len(self._audio):
                chunk = self._audio[self._position : self._position + frames - filled]
                out[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
                self._position += len(chunk)
                if self._position >= len(self._audio):
                    if not self._loop:
                        break
                    self._position = 0
            self._peak = float(np.abs(out).max(initial=0.0))
            outdata[:, 0] = out
            if filled < frames and not self._loop:
                raise self._sd.CallbackStop

    def play(self, audio: np.ndarray, rate: int, start: int = 0, loop: bool = False) -> None:
        self.stop()
        with self._lock:
            self._audio, self._position, self._loop = audio.astype(np.float32), start, loop
        try:
            self._stream = self._sd.OutputStream(samplerate=rate, channels=1, dtype="float32", callback=self._callback)
            self._stream.start()
        except self._sd.PortAudioError as exc:
            self._stream = None
            raise AudioUnavailable(f"No audio output device ({exc}). Connect or enable one; generating, placing "
                                   "and exporting work without sound.") from None

    def switch(self, audio: np.ndarray) -> None:
        with self._lock:
            self._audio = audio.astype(np.float32)
            self._position = min(self._position, len(self._audio))

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def position(self) -> int:
        return self._position

    def playing(self) -> bool:
        return self._stream is not None and self._stream.active

    def level(self) -> float:
        return self._peak
