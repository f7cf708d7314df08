"""One job, the same wherever it runs (`foley generate` in process, the engine's worker): frames or an edit in,
variant WAVs with their sidecars out."""

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from threading import Event

from engine.config import LevelMode, Prompt, SamplingConfig
from engine.core.generate import Generation, check_prompt, check_request, generate
from engine.core.output import Layer, write_variants
from engine.models import Components, family_of, model_config, model_family
from engine.progress import StepInfo
from engine.video import EditFrames, EditSpan, Frames, FrameStreams, check_range, probe_video, target_times

MAX_LAYERS = 8


@dataclass(frozen=True)
class JobSpec:
    """What to generate: frames a host sent, or an edit of media files the engine decodes itself."""

    model: str
    sampling: SamplingConfig
    seeds: tuple[int, ...]
    start: Fraction
    end: Fraction
    source: str
    frames: Frames | None = None
    edit: tuple[EditSpan, ...] = ()
    legacy_frames: bool = False
    level: LevelMode = "normalised"
    prompts: tuple[Prompt, ...] = (Prompt(),)  # one layer per prompt: its own variants, its own stem

    def params(self) -> dict:
        return {
            "model": self.model,
            "sampler": self.sampling.sampler,
            "spacing": self.sampling.spacing,
            "steps": self.sampling.steps,
            "guidance": self.sampling.guidance,
            "seeds": list(self.seeds),
            "start": str(self.start),
            "end": str(self.end),
            "source": self.source,
            "input": "frames" if self.frames is not None else "edit",
            "level": self.level,
            "layers": [{"prompt": p.text, "negative_prompt": p.negative} for p in self.prompts],
        }


def check_spec(spec: JobSpec) -> None:
    """Refuse a job before it is queued: unknown model, bad parameters, wrong frames, unreadable media."""
    config, family = model_config(spec.model), model_family(spec.model)
    check_request(spec.start, spec.end, spec.sampling, spec.seeds)
    if not 1 <= len(spec.prompts) <= MAX_LAYERS:
        raise ValueError(f"{len(spec.prompts)} layers requested; one job makes 1 to {MAX_LAYERS}.")
    for prompt in spec.prompts:
        check_prompt(prompt, family.TAKES_TEXT, spec.model)
    family.timesteps(config, spec.sampling)  # the sampler and spacing are the model family's
    if spec.frames is not None:
        expected = len(target_times(spec.start, spec.end, config.frame_rate))
        if len(spec.frames.rgb) != expected:
            raise ValueError(
                f"{len(spec.frames.rgb)} frames were sent for {float(spec.start):.3f}-{float(spec.end):.3f} s; "
                f"model '{spec.model}' samples {config.frame_rate} fps, so that range needs {expected} frames "
                f"(one every 1/{config.frame_rate} s from the start)."
            )
        family.check_frames(spec.frames, config)
        return
    if not spec.edit:
        raise ValueError("a job needs frames, or media to decode ('media' or 'edit').")
    for span in spec.edit:
        check_range(probe_video(span.media), span.source_start, span.source_end)
    if spec.legacy_frames and (len(spec.edit) != 1 or spec.edit[0].source_start != spec.start):
        raise ValueError("legacy_frames applies to one media file sampled from its own timeline; drop it for edits.")


@dataclass(frozen=True)
class JobResult:
    generations: tuple[Generation, ...]  # one per layer (prompt)
    wavs: list[Path]  # every variant of every layer, layer by layer, each with its `.json` sidecar beside it


def run_job(spec: JobSpec, components: Components, out_dir: Path, *, report: Callable[[StepInfo], None] | None = None,
            cancel: Event | None = None) -> JobResult:
    """Decode (edits window by window inside `generate`), generate every seed of every layer, write the variants
    to `out_dir` (all of them or, on failure, none)."""
    frames = spec.frames if spec.frames is not None else job_frames(spec, components, report)
    pictures = {} if len(spec.prompts) > 1 else None  # every layer samples over the same picture features
    generations = tuple(generate(frames, components=components, sampling=spec.sampling, seeds=spec.seeds,
                                 prompt=prompt, callback=report, cancel=cancel, cache=pictures)
                        for prompt in spec.prompts)
    layered = len(generations) > 1
    written: list[Path] = []
    try:
        for number, generation in enumerate(generations, start=1):
            layer = Layer(number, len(generations), generation.prompt.text) if layered else None
            written += write_variants(generation, components, spec.source, out_dir, spec.level, layer)
    except BaseException:
        for wav in written:  # a later layer failed: the job leaves nothing
            wav.unlink(missing_ok=True)
            wav.with_suffix(".json").unlink(missing_ok=True)
        raise
    return JobResult(generations, written)


def job_frames(spec: JobSpec, components: Components,
               report: Callable[[StepInfo], None] | None) -> Frames | EditFrames | FrameStreams:
    """The pictures of an edit as `components` sees them (the family's `frame_source`); a reference code's legacy
    rule reads the file from its start, so it decodes at once."""
    family = family_of(components)
    if not spec.legacy_frames:
        return family.frame_source(spec.edit, spec.start, spec.end, components.config)
    if report:
        report(StepInfo("decode", 0, 1, 0, len(spec.seeds)))
    frames = family.frame_source(spec.edit, spec.start, spec.end, components.config, legacy=True)
    if report:
        report(StepInfo("decode", 1, 1, 0, len(spec.seeds)))
    return frames
