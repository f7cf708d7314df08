"""Delivery: 48 kHz stems, a loudness-normalised mixdown with a true-peak limiter, the manifest and OTIO, and muxing
into a copy of the video."""
