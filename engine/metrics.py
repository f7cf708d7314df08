"""Alignment metrics: audio onsets, onset accuracy against labels, and AV-Align (optical-flow peaks vs audio
onset peaks, IoU within one video frame, as defined by Yariv et al. 2023 and used by VTA-LDM)."""

import numpy as np

from engine.flow import optical_flow

HOP = 160  # 10 ms at 16 kHz
WINDOW = 512


def onset_strength(audio: np.ndarray) -> np.ndarray:
    """Spectral flux of log-magnitude spectra, one value per hop (Bello et al. 2005)."""
    padded = np.pad(audio.astype(np.float64), (WINDOW // 2, WINDOW // 2))
    count = 1 + (len(padded) - WINDOW) // HOP
    frames = np.lib.stride_tricks.as_strided(padded, (count, WINDOW), (padded.strides[0] * HOP, padded.strides[0]))
    magnitude = np.log1p(100 * np.abs(np.fft.rfft(frames * np.hanning(WINDOW), axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0).sum(axis=1)
    return np.concatenate([[0.0], flux])


def pick_peaks(values: np.ndarray, spacing: int, threshold: float) -> np.ndarray:
    """Indices of local maxima above `threshold` x the median absolute level, at least `spacing` apart."""
    floor = threshold * (np.median(np.abs(values)) + 1e-12)
    peaks: list[int] = []
    for i in np.argsort(values)[::-1]:
        if values[i] <= floor:
            break
        lo, hi = max(0, i - spacing), min(len(values), i + spacing + 1)
        if values[i] >= values[lo:hi].max() and all(abs(i - p) > spacing for p in peaks):
            peaks.append(int(i))
    return np.array(sorted(peaks), int)


def audio_onsets(audio: np.ndarray, rate: int = 16000, threshold: float = 8.0) -> np.ndarray:
    """Onset times in seconds (peaks of the spectral flux, at least 50 ms apart)."""
    return pick_peaks(onset_strength(audio), spacing=5, threshold=threshold) * HOP / rate


def onset_accuracy(onsets: np.ndarray, events: list[float], fps: float) -> float:
    """Share of labelled events with a detected onset within one video frame."""
    if not events:
        return 1.0
    tolerance = 1 / fps + 1e-6  # onsets sit on a 10 ms grid: 1.16 s is within one 25 fps frame of 1.2 s
    return float(np.mean([np.any(np.abs(onsets - t) <= tolerance) for t in events]))


def false_onsets(onsets: np.ndarray, events: list[float], seconds: float, far: float = 0.1) -> float:
    """Detected onsets farther than `far` seconds from every labelled event, per 4 s of sound."""
    labelled = np.asarray(events, float)
    stray = sum(1 for onset in onsets if not labelled.size or np.min(np.abs(labelled - onset)) > far)
    return 4.0 * stray / seconds


def loudest_between_events(audio: np.ndarray, events: list[float], rate: int = 16000, block: float = 0.05,
                           ring: float = 0.15, against: str = "quietest") -> float:
    """dB of the loudest 50 ms block away from every event (more than `ring` s after it, or a block before it)
    minus the loudest block of the quietest event (`against="median"`: of the median event): below 0, every
    (the typical) event is louder than anything between events."""
    size = int(block * rate)
    blocks = audio[: len(audio) // size * size].reshape(-1, size).astype(np.float64)
    levels = 20 * np.log10(np.sqrt((blocks**2).mean(axis=1)) + 1e-9)
    starts = np.arange(len(levels)) * block
    near = np.zeros(len(levels), bool)
    peaks = []
    for time in events:
        around = (starts >= time - block) & (starts < time + ring)
        near |= around
        peaks.append(levels[around].max())
    return float(levels[~near].max() - (min(peaks) if against == "quietest" else np.median(peaks)))


def _grey(frame: np.ndarray) -> np.ndarray:
    return (np.asarray(frame, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


def motion_curve(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Mean optical-flow magnitude (px) at each RGB frame, from the frame before it: `previous` precedes the first
    (a window continuing a range); without it the first frame repeats the first pair, as AV-Align does."""
    grey = [_grey(f) for f in ([] if previous is None else [previous])] + [_grey(f) for f in frames]
    motion = [float(np.linalg.norm(optical_flow(a, b), axis=2).mean()) for a, b in zip(grey, grey[1:])]
    if previous is None:
        motion = (motion[:1] or [0.0]) + motion
    return np.array(motion)


def motion_peaks(motion: np.ndarray, fps: float) -> np.ndarray:
    """AV-Align's video peaks: times of strict local maxima above 0.1 px of the mean optical-flow magnitude."""
    return np.array([i for i in range(1, len(motion) - 1)
                     if motion[i - 1] < motion[i] > motion[i + 1] and motion[i] > 0.1], float) / fps


def motion_events(motion: np.ndarray, fps: float) -> np.ndarray:
    """Times where the picture's motion changes abruptly (an impact stops a fall, a slide starts): peaks of the
    frame-to-frame change of the mean flow magnitude, at least two frames apart, above 3x its median."""
    change = np.abs(np.diff(motion, prepend=motion[:1]))
    return pick_peaks(change, spacing=2, threshold=3.0) / fps


def matched_iou(found: np.ndarray, expected: np.ndarray, tolerance: float) -> float:
    """|matches| / |union| of two sets of times, each time matched at most once (nearest first) within
    `tolerance`, so the result lies in [0, 1]."""
    free = list(expected)
    matches = 0
    for time in found:
        near = [t for t in free if abs(t - time) < tolerance]
        if near:
            free.remove(min(near, key=lambda t: abs(t - time)))
            matches += 1
    union = len(found) + len(expected) - matches
    return matches / union if union else 1.0


SYNC_TOLERANCE = 0.1  # seconds: sound within 100 ms of the picture reads as in sync (and at least one frame)


def sync_score(motion: np.ndarray, fps: float, audio: np.ndarray, rate: int = 16000) -> float:
    """How well the audio's onsets follow the picture's motion events, 0 (none) to 1 (one onset per event, each
    within max(one frame, 0.1 s)): the one-to-one IoU of `audio_onsets` and `motion_events`."""
    return matched_iou(audio_onsets(audio, rate), motion_events(motion, fps), max(1 / fps, SYNC_TOLERANCE))


def av_align(frames: np.ndarray, fps: float, audio: np.ndarray, rate: int = 16000) -> float:
    """IoU of audio-onset peaks and video-motion peaks, an audio peak matching when it lies strictly within one
    frame of a video peak (1.0 = every peak matched)."""
    audio_peaks, video_peaks = audio_onsets(audio, rate), motion_peaks(motion_curve(frames), fps)
    matched = sum(1 for a in audio_peaks if np.any(np.abs(video_peaks - a) < 1 / fps))
    union = len(audio_peaks) + len(video_peaks) - matched
    return matched / union if union else 1.0


def mel_features(audio: np.ndarray, rate: int = 16000, bands: int = 32) -> np.ndarray:
    """Per-clip feature for a Fréchet distance: mean and std of log energy in `bands` mel-spaced bands."""
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64)[: len(audio) // HOP * HOP].reshape(-1, HOP) *
                                  np.hanning(HOP), axis=1)) ** 2
    freqs = np.fft.rfftfreq(HOP, 1 / rate)
    mel = 2595 * np.log10(1 + freqs / 700)
    edges = np.linspace(mel.min(), mel.max() + 1e-9, bands + 1)
    energy = np.stack([spectrum[:, (mel >= a) & (mel < b)].sum(axis=1) for a, b in zip(edges, edges[1:])], axis=1)
    log_energy = np.log(energy + 1e-10)
    return np.concatenate([log_energy.mean(axis=0), log_energy.std(axis=0)])


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017; FAD uses VGGish
    features, which cannot be downloaded here, so the feature is `mel_features`)."""
    from scipy import linalg  # installed with pyloudnorm

    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root))
    return max(0.0, float(distance))  # sqrtm rounding can leave a tiny negative for identical sets


OPTIONAL_METRICS = {  # metric -> (module to import, how to get it)
    "fad": ("frechet_audio_distance", "pip install frechet_audio_distance (downloads VGGish weights on first use)"),
    "clap": ("laion_clap", "pip install laion_clap and its checkpoint"),
    "pam": ("pam", "install PAM from its repository with its checkpoint"),
    "kl": ("panns_inference", "pip install panns_inference (PANNs weights for KL and IS)"),
    "is": ("panns_inference", "pip install panns_inference (PANNs weights for KL and IS)"),
}


def optional_metric(name: str):
    """The installed module behind a learned metric, or an ImportError that says how to install it."""
    import importlib

    module, how = OPTIONAL_METRICS[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"The {name.upper()} metric needs a model that is not installed here: {how}.") from None
