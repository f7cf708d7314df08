"""Which piece of picture is on screen when: flatten stacked clips to the topmost one per stretch of time.

Standard library only, so hosts with their own Python (Blender) use the same rule as the engine's bridges.
"""

from dataclasses import dataclass, replace
from fractions import Fraction


@dataclass(frozen=True)
class Layered:
    """A clip on a layer (higher is on top) showing its media from `source_start` over [record_start, record_end)."""

    layer: int
    record_start: Fraction
    record_end: Fraction
    source_start: Fraction
    item: object  # the host's clip or strip, handed back untouched


def visible(pieces: list[Layered], start: Fraction, end: Fraction) -> list[Layered]:
    """The parts of `pieces` a viewer sees over [start, end): cut where any piece begins or ends, keep the top
    layer per stretch, join stretches where the same piece continues; source starts follow each trim."""
    cuts = sorted({start, end, *(t for p in pieces for t in (p.record_start, p.record_end) if start < t < end)})
    shown: list[Layered] = []
    for begin, finish in zip(cuts, cuts[1:]):
        covering = [p for p in pieces if p.record_start <= begin < p.record_end]
        if not covering:
            continue
        top = max(covering, key=_layer)
        if shown and shown[-1].item is top.item and shown[-1].record_end == begin:
            shown[-1] = replace(shown[-1], record_end=finish)
        else:
            shown.append(replace(top, record_start=begin, record_end=finish,
                                 source_start=top.source_start + (begin - top.record_start)))
    return shown


def _layer(piece: Layered) -> int:
    return piece.layer
