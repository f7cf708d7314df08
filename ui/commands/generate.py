"""`foley generate` (a video range, or with --project a timeline selection) and `foley demo`: one job, run in this
process or on an engine."""

from __future__ import annotations

import argparse
import json
import random
import sys
import typing
from dataclasses import fields, replace
from fractions import Fraction
from pathlib import Path

from engine.config import SamplingConfig
from ui.commands import hosts
from ui.commands.common import (
    DEFAULT_OUTPUT,
    ProgressBar,
    add_generation_options,
    announce_model,
    engine_client,
    engine_model,
    seconds,
)

if typing.TYPE_CHECKING:
    from engine.core.job import JobSpec
    from engine.serving.client import EngineClient
    from engine.video import EditSpan

# Heavy modules (torch, diffusers, av, soundfile, the server) are imported inside the commands that use them,
# so that `foley --help` and argument errors answer at once (bench/startup.py measures it).


def run_generation(edit: tuple[EditSpan, ...], start: Fraction, end: Fraction, name: str,
                   args: argparse.Namespace) -> list[Path]:
    """Generate the range [start, end) of `edit` (named `name` in the sidecars) here or on an engine server, write
    the variants, print their paths."""
    from engine.config import Prompt
    from engine.core.job import JobSpec

    if args.legacy_frames and len(edit) != 1:
        raise ValueError("--legacy-frames samples one video file by the reference code's rule; it does not apply to "
                         "edits.")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    seeds = tuple(seed + i for i in range(args.variants))
    _check_seeds(args.variants, seeds)
    spec = JobSpec(model=args.model or "", sampling=SamplingConfig(), seeds=seeds, start=start, end=end, source=name,
                   edit=edit, legacy_frames=args.legacy_frames, level=args.level,
                   prompts=tuple(Prompt(text, args.negative_prompt or "") for text in args.prompt or [""]))
    paths = _generate_on_engine(spec, args) if args.engine else _generate_here(spec, args)
    for path in paths:  # stdout stays one WAV path a line; the score goes beside it on stderr
        score = json.loads(path.with_suffix(".json").read_text()).get("sync_score")
        print(f"sync score {score:.2f}  {path.name}" if score is not None else path.name, file=sys.stderr)
        print(path)
    return paths


def sampling_of(args: argparse.Namespace, presets: dict[str, SamplingConfig]) -> SamplingConfig:
    """The model family's --preset, with --sampler, --steps and --guidance over it."""
    sampling = presets[args.preset]
    overrides = {"sampler": args.sampler, "steps": args.steps, "guidance": args.guidance}
    return replace(sampling, **{key: value for key, value in overrides.items() if value is not None})


def _check_seeds(variants: int, seeds: tuple[int, ...]) -> None:
    """Refuse a bad --variants or --seed before any model loads (the engine checks the seeds again)."""
    from engine.core.generate import MAX_SEED, MAX_VARIANTS

    if not 1 <= variants <= MAX_VARIANTS:
        raise ValueError(f"--variants {variants}: ask for 1 to {MAX_VARIANTS} variants.")
    if not 0 <= seeds[0] <= seeds[-1] <= MAX_SEED:
        more = f" (with {variants} variants the seeds run to seed + {variants - 1})" if variants > 1 else ""
        raise ValueError(f"--seed {seeds[0]} is out of range; use a whole number from 0 to {MAX_SEED - variants + 1}"
                         f"{more}.")


def _generate_here(spec: JobSpec, args: argparse.Namespace) -> list[Path]:
    """The job in this process: the same `run_job` the engine's worker runs."""
    from engine.core.job import check_spec, run_job
    from engine.models import best_installed, describe_runtime, model_family, open_model

    model = spec.model or best_installed()
    spec = replace(spec, model=model, sampling=sampling_of(args, model_family(model).SAMPLING_PRESETS))
    check_spec(spec)
    encoder = Path(args.encoder) if args.encoder not in (None, "torch") else args.encoder
    components = open_model(spec.model, args.device, args.precision, encoder)
    announce_model(components.name, components.licences, components.trained, spec.sampling, spec.seeds)
    print(f"runs on {describe_runtime(components)}", file=sys.stderr)
    bar = ProgressBar()
    try:
        return run_job(spec, components, Path(args.output), report=bar).wavs
    finally:
        bar.close()


def _generate_on_engine(spec: JobSpec, args: argparse.Namespace) -> list[Path]:
    """Generate on an engine server; one this command started stops at the end (`EngineClient.release`)."""
    client = engine_client(args.engine, args.token)
    try:
        return _run_on_engine(client, spec, args)
    finally:
        client.release()


def _run_on_engine(client: EngineClient, spec: JobSpec, args: argparse.Namespace) -> list[Path]:
    """Submit the job (a local engine reads the media itself; a remote one gets the decoded frames), follow its
    progress, then download the variants."""
    from engine.progress import StepInfo

    model = engine_model(client, args.model)
    presets = {name: SamplingConfig(**values) for name, values in model["sampling_presets"].items()}
    spec = replace(spec, sampling=sampling_of(args, presets))
    announce_model(model["name"], model["licences"], model["trained"], spec.sampling, spec.seeds)
    sampling = spec.sampling
    params = {"seeds": list(spec.seeds), "model": model["name"], "steps": sampling.steps, "guidance": sampling.guidance,
              "sampler": sampling.sampler, "spacing": sampling.spacing, "level": spec.level,
              "prompt": [p.text for p in spec.prompts] if len(spec.prompts) > 1 else spec.prompts[0].text,
              "negative_prompt": spec.prompts[0].negative}
    bar = ProgressBar()
    if client.local and spec.legacy_frames:
        (span,) = spec.edit
        job = client.submit_media(str(span.media), str(spec.start), str(spec.end), legacy_frames=True,
                                  source=spec.source, **params)
    elif client.local:
        edit = [{"media": str(span.media), "record_start": str(span.record_start), "record_end": str(span.record_end),
                 "source_start": str(span.source_start)} for span in spec.edit]
        job = client.submit_edit(edit, str(spec.start), str(spec.end), source=spec.source, **params)
    else:
        job = _upload_frames(client, spec, model, params, bar)
    step_fields = [f.name for f in fields(StepInfo)]

    def show(event: dict) -> None:
        if event["event"] == "progress":  # an older engine may send fewer fields
            bar(StepInfo(**{name: event[name] for name in step_fields if name in event}))

    try:
        client.wait(job["id"], on_event=show)
    except KeyboardInterrupt:
        client.cancel(job["id"])
        raise
    finally:
        bar.close()
    return client.download(job["id"], args.output)


def _upload_frames(client: EngineClient, spec: JobSpec, model: dict, params: dict, bar: ProgressBar) -> dict:
    """Decode here at the engine's model rate and size and stream the frames a model window at a time (each
    request stays small, so a range of any length fits the engine's request limit); the last window goes with
    the job."""
    from engine.progress import StepInfo
    from engine.video import EditFrames, decode_frames

    if model["image_size"] is None:
        raise ValueError(f"model '{model['name']}' reads the media itself (two picture streams); run the job on an "
                         "engine on the machine that holds the media, or in this process (drop --engine).")
    rate, size = model["frame_rate"], model["image_size"]
    window = Fraction(int(Fraction(model["window_seconds"]) * rate), rate)  # a model window, whole frames long
    if spec.legacy_frames:  # the reference's rule indexes the whole file: one decode
        frames = decode_frames(spec.edit[0].media, spec.start, spec.end, rate=rate, size=size, legacy=True)
    else:  # decoded a window at a time as it is sent
        frames = EditFrames(spec.edit, spec.start, spec.end, rate, size)
    starts, upload = _window_starts(spec, window), None
    for number, start in enumerate(starts, start=1):
        part = frames.window(start, min(start + window, spec.end))
        bar(StepInfo("decode", number, len(starts), 0, len(spec.seeds)))
        fields_of = {"count": len(part.rgb), "width": size, "height": size, "frame_times": [str(t) for t in part.times]}
        if number < len(starts):
            upload = client.upload_frames(part.rgb.tobytes(), upload=upload, **fields_of)
        else:
            return client.submit_frames(part.rgb.tobytes(), fps=rate, start=str(spec.start), end=str(spec.end),
                                        source=spec.source, upload=upload, **fields_of, **params)
    raise ValueError("the range holds no frames to send.")


def _window_starts(spec: JobSpec, window: Fraction) -> list[Fraction]:
    starts, t = [], spec.start
    while t < spec.end:
        starts.append(t)
        t += window
    return starts


def cmd_generate(args: argparse.Namespace) -> None:
    """`foley generate`: a video range, or with --project the timeline selection (then --place puts it back)."""
    if args.project is not None:
        return _generate_for_project(args)
    if args.video is None:
        raise ValueError("give a video file to generate from (or --project PROJECT for a timeline selection).")
    if args.output is None:
        args.output = DEFAULT_OUTPUT
    run_generation(*video_range(Path(args.video), args.start, args.end), args)


def _generate_for_project(args: argparse.Namespace) -> None:
    project = hosts.open_project_of(args)
    selection = hosts.read_selection(project, args)
    start, end = selection.range_seconds()
    print(f"selection {selection.label}: {len(selection.spans)} span(s), {float(start):.3f}-{float(end):.3f} s",
          flush=True)
    handle = project.handle
    name = str(handle.resolve()) if isinstance(handle, Path) else f"resolve:{project.read_timeline().name}"
    if args.output is None:
        args.output = str(project.foley_folder or DEFAULT_OUTPUT)
    wavs = run_generation(tuple(selection.edit()), start, end, name, args)
    if args.place:
        for track, layer_wavs in layer_tracks(wavs, args.track):
            hosts.place(project, layer_wavs, selection.record.start_time, track)


def layer_tracks(wavs: list[Path], track: str) -> list[tuple[str, list[Path]]]:
    """Each layer's variants on a track of its own ('Foley 2 wind'); one layer keeps the track as named."""
    layers: dict[int, list[Path]] = {}
    prompts: dict[int, str] = {}
    for wav in wavs:
        layer = json.loads(wav.with_suffix(".json").read_text()).get("layer")
        number = layer["number"] if layer else 0
        layers.setdefault(number, []).append(wav)
        prompts[number] = layer["prompt"] if layer else ""
    if len(layers) == 1:
        return [(track, wavs)]
    return [(f"{track} {number} {prompts[number]}".strip()[:48], group) for number, group in layers.items()]


def video_range(video: Path, start: Fraction, end: Fraction | None) -> tuple[tuple[EditSpan], Fraction, Fraction, str]:
    """A range of one video file (without an end, up to the end of the video) as an edit of one span."""
    from engine.video import EditSpan, check_range, probe_video

    info = probe_video(video)
    if end is None:
        end = info.duration
    check_range(info, start, end)
    return (EditSpan(info.path, start, end, start),), start, end, str(video.resolve())


def cmd_demo(args: argparse.Namespace) -> None:
    from engine.models import EMBEDDED, best_installed
    from engine.training.sample_video import demo_impacts, make_demo_video

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    video = make_demo_video(out / "demo-bouncing-ball.mp4")
    print(f"sample video: {video}", file=sys.stderr)
    if (args.model or best_installed()) == EMBEDDED:
        print(f"you will hear the built-in starter model: synthetic knocks on each of the ball's "
              f"{len(demo_impacts())} floor impacts (it knows simple objects hitting floors and walls); for realistic "
              "sound on real footage run `foley models pull vta-ldm`", file=sys.stderr)
    run_generation(*video_range(video, Fraction(0), None), args)


def add_commands(sub) -> None:
    gen = sub.add_parser("generate", help="generate foley for a range of a video")
    gen.add_argument("video", nargs="?", help="the video file (or use --project)")
    gen.add_argument("--start", type=seconds, default=Fraction(0), help="range start in seconds (default 0)")
    gen.add_argument("--end", type=seconds, help="range end in seconds (default: the end of the video)")
    add_generation_options(gen, None, f"output folder (default: {DEFAULT_OUTPUT}; with --project, 'Foley Desk' "
                                      "beside the project file)")
    hosts.add_project_options(gen)
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="run the whole pipeline offline on a generated sample video")
    add_generation_options(demo, "foley-demo", "output folder (default: foley-demo)")
    demo.set_defaults(func=cmd_demo)
