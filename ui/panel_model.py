"""The panel's state without Qt: project and selection, the engine's models, generation settings and prompts,
jobs, variants, placing, export.

Views connect to `model.events`; generation is requested through `events.generate_requested` and answered by
the worker calling `job_event`, `job_finished` or `job_failed`; a cancel is requested through
`events.cancel_requested` with the engine's job id.
"""

import json
import logging
import random
import time
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import soundfile
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin.contract import Placement, Selection, WriteReport, exact_rate, seconds, timeline_rate
from editor_plugin.errors import HostError, SelectionError
from editor_plugin.hosts import RESOLVE, Project, open_project
from editor_plugin.project_files import restore
from engine.config import SAMPLING_PRESETS, Prompt, SamplingConfig
from engine.serving.client import progress_text
from export.package import export_package, stem_input
from export.stems import ExportError
from ui.events import Events

logger = logging.getLogger(__name__)

# the qualities in an editor's words, each made from the chosen model's own sampling presets (`/v1/models`):
# Final is its "fast" preset, the published method its "reference" one, Draft its "draft" one (from an engine too
# old to have it: the fast preset cut to DRAFT_STEPS, what that preset is)
QUALITIES = ("Draft", "Final", "Published method")
DRAFT_STEPS = 10
SLOW_FACTOR = 2  # a quality taking more than this many times Final's steps says "(slow)"
THUMBNAIL_BINS = 160
DEFAULT_OUTPUT = Path("foley-panel")  # with no project (or Resolve) and no folder chosen
CANCELLABLE = ("queued", "running")  # states the engine can still cancel


@dataclass(frozen=True)
class Settings:
    variants: int = 2
    seed: int = 1
    lock_seed: bool = False
    quality: str = "Final"
    guidance: float | None = None  # None: the chosen model's own for the quality
    model: str | None = None  # None: the engine's default model


@dataclass(frozen=True)
class ModelInfo:
    """One model the engine offers, as its `/v1/models` entry describes it."""

    name: str
    family: str
    takes_text: bool
    presets: dict[str, SamplingConfig]  # the family's sampling presets: "fast", "reference" and "draft"
    licences: tuple[str, ...] = ()
    default: bool = False

    @classmethod
    def from_entry(cls, entry: dict) -> "ModelInfo":
        """An entry of `/v1/models`; an engine older than MMAudio lists neither family nor presets: VTA-LDM's."""
        known = {f.name for f in fields(SamplingConfig)}
        presets = {name: SamplingConfig(**{key: value for key, value in preset.items() if key in known})
                   for name, preset in entry.get("sampling_presets", {}).items()} or dict(SAMPLING_PRESETS)
        return cls(entry["name"], entry.get("family", "vta-ldm"), bool(entry.get("takes_text", False)), presets,
                   tuple(item["licence"] for item in entry.get("licences", [])), bool(entry.get("default", False)))

    def qualities(self) -> dict[str, SamplingConfig]:
        """QUALITIES as this model samples them."""
        fast, reference = self.presets["fast"], self.presets["reference"]
        draft = self.presets.get("draft", replace(fast, steps=min(DRAFT_STEPS, fast.steps)))
        return {"Draft": draft, "Final": fast, "Published method": reference}

    def quality_label(self, quality: str) -> str:
        """A quality's name as the chooser shows it, with "(slow)" when it takes far more steps than Final."""
        qualities = self.qualities()
        slow = qualities[quality].steps > SLOW_FACTOR * qualities["Final"].steps
        return f"{quality} (slow)" if slow else quality


def recipe(sampling: SamplingConfig) -> str:
    """A sampling recipe in one line, for tooltips."""
    return f"{sampling.sampler} sampler, {sampling.steps} steps, guidance {sampling.guidance:g}"


def describe_prompt(prompt: Prompt) -> str:
    """A prompt and its negative in one line ("" for none), as the variants list and job queue show it."""
    away = f"not: {prompt.negative}" if prompt.negative else ""
    return " · ".join(part for part in (prompt.text, away) if part)


@dataclass(frozen=True)
class PromptField:
    """Whether the prompt fields take text now, and if not, why (shown in the fields)."""

    enabled: bool
    reason: str = ""


@dataclass
class JobRow:
    """One generation as the queue shows it."""

    key: int
    label: str
    state: str = "waiting"  # waiting (not yet sent), queued, running, done, failed, cancelled
    stage: str = ""
    step: int = 0
    total: int = 0
    variant: int = 0
    variants: int = 1
    window: int = 0
    windows: int = 1
    engine_id: str | None = None
    error: str | None = None
    eta_seconds: float | None = None  # the engine's estimate for the whole job

    @property
    def progress(self) -> str:
        """What the queue row says while the job runs: window k/n, variants, stage k/n and the ETA."""
        return progress_text({"stage": self.stage, "step": self.step, "total": self.total, "variants": self.variants,
                              "window": self.window, "windows": self.windows, "eta": self.eta_seconds})

    @property
    def summary(self) -> str:
        """The queue row: label, state, progress while it runs and the error if it failed."""
        progress = f" {self.progress}" if self.state == "running" else ""
        error = f": {self.error}" if self.error else ""
        return f"{self.label} — {self.state}{progress}{error}"


@dataclass(frozen=True)
class GenerateRequest:
    key: int
    edit: list[dict]
    start: Fraction
    end: Fraction
    seeds: list[int]
    sampler: str
    spacing: str
    steps: int
    guidance: float
    model: str | None
    source: str
    record_start: RationalTime
    output: Path  # where the worker downloads the variants
    label: str = ""  # the selection's name, so its variants can be grouped and named under it
    prompt: Prompt = Prompt()  # empty for a model that takes no text


@dataclass(frozen=True)
class VariantRow:
    wav: Path
    seed: int
    rate: int
    audio: np.ndarray  # float32 mono
    peaks: np.ndarray  # THUMBNAIL_BINS peak values for the waveform thumbnail
    request: GenerateRequest  # what it was generated for (its range, edit and record position)
    sync: float | None = None  # how well its onsets follow the picture's motion, 0-1 (from its sidecar)

    @property
    def record_start(self) -> RationalTime:
        return self.request.record_start

    @property
    def prompt(self) -> Prompt:
        return self.request.prompt

    @property
    def recipe(self) -> str:
        """The model and sampling it was made with, to tell takes apart."""
        request = self.request
        return (f"{request.model}: {request.sampler} sampler, {request.steps} steps, guidance {request.guidance:g}, "
                f"seed {self.seed}")

    @property
    def duration(self) -> Fraction:
        return Fraction(len(self.audio), self.rate)


@dataclass(frozen=True)
class VariantGroup:
    """The variants made for one timeline range, as the panel lists them under that range."""

    label: str
    start: Fraction  # record seconds
    end: Fraction
    indices: list[int]  # into PanelModel.variants


@dataclass
class EngineStatus:
    connected: bool = False
    device: str = ""
    model: str = ""
    licences: list[str] = field(default_factory=list)
    error: str | None = None
    models: list[ModelInfo] = field(default_factory=list)

    def find(self, name: str | None) -> ModelInfo | None:
        """The model called `name` (None: the default), or None when the engine does not offer it."""
        if name is None:
            return next((m for m in self.models if m.default), self.models[0] if self.models else None)
        return next((m for m in self.models if m.name == name), None)

    @property
    def summary(self) -> str:
        """What the panel says about the engine: its device, default model and licences, or that it is down."""
        if not self.connected:
            return "Engine: not connected"
        return f"Engine: {self.device}, model {self.model} ({'; '.join(self.licences)})"


def timecode(frame: float, rate: float) -> str:
    """HH:MM:SS:FF of a frame count at a (rounded) frame rate, as the editors' rulers show it."""
    whole = int(round(frame, 6))
    fps = max(1, round(rate))
    return f"{whole // (3600 * fps):02d}:{whole // (60 * fps) % 60:02d}:{whole // fps % 60:02d}:{whole % fps:02d}"


def thumbnail(audio: np.ndarray, bins: int = THUMBNAIL_BINS) -> np.ndarray:
    """Peak per bin: enough to draw a waveform row."""
    if len(audio) == 0:
        return np.zeros(bins, np.float32)
    edges = np.linspace(0, len(audio), bins + 1).astype(int)
    return np.array([np.abs(audio[a:b]).max(initial=0.0) for a, b in zip(edges, edges[1:])], np.float32)


def sync_of(wav: Path) -> float | None:
    """The sync score the engine wrote into a variant's sidecar (None without one, or from an older engine)."""
    sidecar = wav.with_suffix(".json")
    return json.loads(sidecar.read_text()).get("sync_score") if sidecar.is_file() else None


class PanelModel:
    """Everything the panel shows and does, testable without Qt."""

    def __init__(self, output: Path | None = None):
        self._output = output  # the folder the user chose; None: beside the project, else DEFAULT_OUTPUT
        self.events = Events("project", "selection", "settings", "prompt", "jobs", "variants", "chosen", "engine",
                             "message", "placed", "playhead", "generate_requested", "cancel_requested")
        self.project: Project | None = None
        self.project_name = ""
        self.timeline: otio.schema.Timeline | None = None
        self.selection: Selection | None = None
        self.settings = Settings()
        self.prompts: dict[tuple[Fraction, Fraction], Prompt] = {}  # by record range in seconds
        self.jobs: list[JobRow] = []
        self.variants: list[VariantRow] = []
        self.chosen: int | None = None
        self.engine = EngineStatus()
        self.placements: list[WriteReport] = []
        self.placed: list[VariantRow] = []  # what each placement put on the timeline, for export
        self.playhead = 0.0  # timeline frames
        self._next_key = 1

    @property
    def output(self) -> Path:
        """Where variants and stems go: the folder chosen, else `Foley Desk` beside the open project file."""
        folder = self.project.foley_folder if self.project is not None else None
        return self._output or folder or DEFAULT_OUTPUT

    # -- project and selection --------------------------------------------------------------------------------

    def open_project(self, path: Path, sequence: str | None = None) -> None:
        """A project file (Kdenlive, Shotcut, OTIO, FCP 7 XML, FCPXML, AAF, EDL); `sequence` names one of its
        timelines (default: the active one, else the first)."""
        self._open(str(path.resolve()), path, sequence=sequence)

    def connect_resolve(self, module=None) -> None:
        """The timeline open in a running DaVinci Resolve (`module` stands in for its scripting module in tests)."""
        self._open("DaVinci Resolve", RESOLVE, resolve_module=module)

    def _open(self, name: str, *where, **options) -> None:
        try:
            project = open_project(*where, **options)
            timeline = project.read_timeline()
        except HostError as exc:
            self.events.message.emit(str(exc))
            return
        self.project, self.project_name = project, name
        self.timeline, self.selection = timeline, None
        self.prompts = {}
        self.events.project.emit(name)
        self.events.selection.emit(None)
        self.events.prompt.emit(self.prompt)

    def rate(self) -> float:
        """The timeline's frame rate; 25 for a timeline without clips, so an empty one still draws."""
        try:
            return timeline_rate(self.timeline)
        except SelectionError:
            return 25.0

    def select_clip(self, name: str) -> None:
        self._select(clip=name)

    def select_range(self, first: int, after: int, label: str | None = None) -> None:
        """Frames [first, after) in either order; `label` names it (a clicked clip's name)."""
        rate = self.rate()
        first, after = sorted((first, after))
        self._select(label, record=TimeRange(RationalTime(first, rate), RationalTime(max(1, after - first), rate)))

    def _select(self, label: str | None = None, **how) -> None:
        try:
            selection = self.project.read_selection(**how)
        except HostError as exc:
            self.events.message.emit(str(exc))
            return
        self.selection = replace(selection, label=label) if label else selection
        self.events.selection.emit(self.selection)
        self.events.prompt.emit(self.prompt)
        self.move_playhead(self.selection.record.start_time.value)

    def move_playhead(self, frame: float) -> None:
        """Park the playhead at a timeline frame."""
        self.playhead = frame
        self.events.playhead.emit(frame)

    def notify(self, text: str) -> None:
        """Tell the user something a view or worker found out (no audio device, a preview that cannot decode)."""
        self.events.message.emit(text)

    # -- generation -------------------------------------------------------------------------------------------

    def update_settings(self, **changes) -> None:
        self.settings = replace(self.settings, **changes)
        self.events.settings.emit(self.settings)

    def shuffle_seed(self) -> None:
        self.update_settings(seed=random.randrange(2**31))

    def choose_model(self, name: str | None) -> None:
        """Generate with model `name` (None: the engine's default) at its own guidance: guidance scales differ
        between families."""
        self.update_settings(model=name, guidance=None)

    @property
    def model_info(self) -> ModelInfo | None:
        """The chosen model as the engine describes it; None when not connected or the engine lacks it."""
        return self.engine.find(self.settings.model)

    @property
    def sampling(self) -> SamplingConfig | None:
        """The chosen quality as the chosen model samples it, with the guidance the user set (if any)."""
        info = self.model_info
        if info is None:
            return None
        sampling = info.qualities()[self.settings.quality]
        guidance = self.settings.guidance
        return sampling if guidance is None else replace(sampling, guidance=guidance)

    # -- prompts --------------------------------------------------------------------------------------------------

    @property
    def prompt(self) -> Prompt:
        """The selected range's prompt (each range keeps its own); empty without a selection."""
        if self.selection is None:
            return Prompt()
        return self.prompts.get(self.selection.range_seconds(), Prompt())

    def set_prompt(self, text: str | None = None, negative: str | None = None) -> None:
        """Change the selected range's prompt, its negative prompt or both."""
        if self.selection is None:
            self.events.message.emit("Select a range first: each range keeps its own prompt.")
            return
        current = self.prompt
        prompt = Prompt(current.text if text is None else text, current.negative if negative is None else negative)
        self.prompts[self.selection.range_seconds()] = prompt
        self.events.prompt.emit(prompt)

    def prompt_field(self) -> PromptField:
        """Whether the prompt fields take text: only for a model that takes text, and a selected range."""
        info = self.model_info
        if not self.engine.connected:
            return PromptField(False, "Connect the engine to see whether its model takes a text prompt")
        if info is None:
            return PromptField(False, f"The engine has no model '{self.settings.model}'")
        if not info.takes_text:
            return PromptField(False, f"{info.name} ({info.family}) takes no text prompt: the picture alone "
                                      "decides the sound")
        if self.selection is None:
            return PromptField(False, "Select a range to describe its sound (each range keeps its own prompt)")
        return PromptField(True)

    def generate(self) -> GenerateRequest | None:
        """Queue a job for the selection; the seed moves on unless it is locked."""
        if self.selection is None:
            self.events.message.emit("Select a clip or drag a range on the timeline first.")
            return None
        if not self.engine.connected:
            self.events.message.emit("The engine is not connected: start it (`foley serve`) and press Reconnect.")
            return None
        info, sampling = self.model_info, self.sampling
        if info is None:
            names = ", ".join(m.name for m in self.engine.models)
            self.events.message.emit(f"The engine has no model '{self.settings.model}'; choose one of: {names}.")
            return None
        start, end = self.selection.range_seconds()
        settings = self.settings
        request = GenerateRequest(
            key=self._next_key,
            edit=[{"media": str(s.media), "record_start": str(s.record_start), "record_end": str(s.record_end),
                   "source_start": str(s.source_start)} for s in self.selection.edit()],
            start=start, end=end, seeds=[settings.seed + i for i in range(settings.variants)],
            sampler=sampling.sampler, spacing=sampling.spacing, steps=sampling.steps, guidance=sampling.guidance,
            model=info.name, source=self.project_name, record_start=self.selection.record.start_time,
            output=self.output, label=self.selection.label,
            prompt=self.prompt if info.takes_text else Prompt(),  # fields a model without text never showed
        )
        self._next_key += 1
        asked = f" · {describe_prompt(request.prompt)}" if request.prompt else ""
        label = f"{self.selection.label}{asked} · {settings.variants} variant(s) · seeds {request.seeds[0]}…"
        self.jobs.append(JobRow(request.key, label, variants=settings.variants))
        self.events.jobs.emit(self.jobs)
        if not settings.lock_seed:
            self.update_settings(seed=settings.seed + settings.variants)
        self.events.generate_requested.emit(request)
        return request

    def job(self, key: int) -> JobRow:
        return next(job for job in self.jobs if job.key == key)

    def job_event(self, key: int, event: dict) -> None:
        """An engine event for job `key`: state changes, and progress with the engine's ETA for the whole job (its
        measured pace times every step all windows have left, so it does not jump as windows start)."""
        job = self.job(key)
        if event["event"] == "state":
            job.state = event["state"]
        elif event["event"] == "progress":
            job.state, job.stage, job.step, job.total = "running", event["stage"], event["step"], event["total"]
            job.variant, job.variants = event["variant"], event["variants"]
            job.window, job.windows = event.get("window", 0), event.get("windows", 1)
            job.eta_seconds = event.get("eta", job.eta_seconds)
        self.events.jobs.emit(self.jobs)

    def job_submitted(self, key: int, engine_id: str) -> None:
        self.job(key).engine_id = engine_id
        self.events.jobs.emit(self.jobs)

    def job_finished(self, key: int, request: GenerateRequest, wavs: list[Path]) -> None:
        job = self.job(key)
        job.state, job.eta_seconds = "done", 0.0
        for wav, seed in zip(wavs, request.seeds):
            audio, rate = soundfile.read(str(wav), dtype="float32")
            self.variants.append(VariantRow(wav, seed, rate, audio, thumbnail(audio), request, sync_of(wav)))
        self.events.jobs.emit(self.jobs)
        self.events.variants.emit(self.variants)
        if self.chosen is None and self.variants:
            self.choose(len(self.variants) - len(wavs))

    def job_failed(self, key: int, message: str, state: str = "failed") -> None:
        job = self.job(key)
        job.state, job.error = state, message
        self.events.jobs.emit(self.jobs)
        self.events.message.emit(message)

    def cancel(self) -> str | None:
        """Cancel the newest job the engine still runs or queues; its engine id, or None when there is none."""
        job = next((job for job in reversed(self.jobs) if job.state in CANCELLABLE and job.engine_id), None)
        if job is None:
            return None
        self.events.cancel_requested.emit(job.engine_id)
        return job.engine_id

    def set_engine(self, status: dict) -> None:
        if "error" in status:
            self.engine = EngineStatus(error=status["error"])
        else:
            default = next((m for m in status["models"] if m["default"]), status["models"][0])
            self.engine = EngineStatus(True, status["health"]["device"], default["name"],
                                       [item["licence"] for item in default["licences"]],
                                       models=[ModelInfo.from_entry(entry) for entry in status["models"]])
        if self.settings.model is not None and self.engine.connected and self.model_info is None:
            self.events.message.emit(f"The engine no longer offers '{self.settings.model}': its default is chosen.")
            self.choose_model(None)
        self.events.engine.emit(self.engine)
        self.events.prompt.emit(self.prompt)
        if self.engine.error:
            self.events.message.emit(self.engine.error)

    # -- audition, place, export ------------------------------------------------------------------------------

    @property
    def chosen_variant(self) -> VariantRow | None:
        """The variant being auditioned, if one is chosen."""
        return self.variants[self.chosen] if self.chosen is not None else None

    def choose(self, index: int) -> None:
        if 0 <= index < len(self.variants):
            self.chosen = index
            self.events.chosen.emit(index)

    def variant_to_audition(self) -> VariantRow | None:
        """The chosen variant, or None after telling the user to make and pick one first."""
        if self.chosen is None:
            self.events.message.emit("Generate and pick a variant to audition.")
        return self.chosen_variant

    def follow_audition(self, position: int) -> None:
        """Move the playhead to `position` samples into the chosen variant, on its range of the timeline."""
        variant = self.chosen_variant
        if variant is not None:
            self.move_playhead(variant.record_start.value + float(Fraction(position, variant.rate)) * self.rate())

    def sort_by_sync(self) -> None:
        """Best-synchronised variants first (unscored last); the chosen variant stays chosen."""
        chosen = self.chosen_variant
        self.variants.sort(key=lambda v: -1.0 if v.sync is None else v.sync, reverse=True)
        self.events.variants.emit(self.variants)
        if chosen is not None:
            self.choose(next(i for i, v in enumerate(self.variants) if v is chosen))  # rows hold arrays: no ==

    def choose_next(self, step: int) -> None:
        if self.variants:
            self.choose(((self.chosen or 0) + step) % len(self.variants))

    def variant_groups(self) -> list[VariantGroup]:
        """Variants grouped by the range they were made for, in the order the ranges were first generated."""
        groups: dict[tuple[Fraction, Fraction], VariantGroup] = {}
        for index, variant in enumerate(self.variants):
            request = variant.request
            group = groups.setdefault((request.start, request.end),
                                      VariantGroup(request.label, request.start, request.end, []))
            group.indices.append(index)
        return list(groups.values())

    def other_range_warning(self, index: int) -> str | None:
        """What to tell the user when variant `index` was made for a range other than the current selection."""
        request = self.variants[index].request
        if self.selection is None or self.selection.range_seconds() == (request.start, request.end):
            return None
        start, end = self.selection.range_seconds()
        return (f"It was made for '{request.label}' {self.timecode_range(request.start, request.end)}, not the "
                f"selection {self.timecode_range(start, end)}: it went to its own range.")

    def timecode_range(self, start: Fraction, end: Fraction) -> str:
        """Record seconds as "HH:MM:SS:FF – HH:MM:SS:FF" at the timeline's rate."""
        rate = exact_rate(self.rate())
        return f"{timecode(float(start * rate), rate)} – {timecode(float(end * rate), rate)}"

    def place(self) -> WriteReport | None:
        """Put the chosen variant on the host timeline at its selection's record position."""
        if self.chosen is None:
            self.events.message.emit("Generate and pick a variant first.")
            return None
        variant = self.variants[self.chosen]
        warning = self.other_range_warning(self.chosen)
        placement = Placement(variant.wav, variant.record_start, RationalTime(len(variant.audio), variant.rate),
                              variant.wav.stem)
        try:
            report = self.project.write_audio_clips([placement])
        except HostError as exc:
            self.events.message.emit(str(exc))
            return None
        self.placements.append(report)
        self.placed.append(variant)
        self.timeline = self.project.read_timeline()
        self.events.placed.emit(report)
        notes = [warning] if warning else []
        self.events.message.emit(f"Placed {variant.wav.name} on {report.track}." +
                                 "".join(f" {note}" for note in notes + list(report.warnings)))
        return report

    def undo_place(self) -> None:
        """Restore the project from the backup the last placement made."""
        if not self.placements or self.placements[-1].backup is None:
            self.events.message.emit("Nothing to undo here (live hosts undo in their own window).")
            return
        restore(self.project.handle, self.placements.pop().backup)
        self.placed.pop()
        self.timeline = self.project.read_timeline()
        self.events.placed.emit(None)
        self.events.message.emit("Placement undone: the project is as it was before.")

    def new_export_folder(self) -> Path:
        """A folder for the next stem package, named for the moment so earlier exports stay as they were."""
        return self.output / time.strftime("stems-%Y%m%d-%H%M%S")

    def export(self, folder: Path, loudness: str = "broadcast", ceiling: float = -1.0) -> dict:
        """The placed variants (or, if none was placed, the chosen one) as a stem package (48 kHz BWF stems
        stamped with their timeline positions, mixdown, StemSet.1 manifest, OTIO); `folder` must be new."""
        origin = seconds(self.timeline.global_start_time) if self.timeline.global_start_time else Fraction(0)
        chosen = [self.chosen_variant] if self.chosen_variant is not None else []
        inputs = [stem_input(v.wav, seconds(v.record_start)) for v in {v.wav: v for v in self.placed}.values() or chosen]
        try:
            manifest = export_package(inputs, folder, loudness=loudness, ceiling=ceiling, timeline_start=origin,
                                      rate=exact_rate(self.rate()))
        except ExportError as exc:
            self.events.message.emit(str(exc))
            return {}
        self.events.message.emit(f"Exported {len(manifest['stems'])} stem(s) and a mixdown to {folder}.")
        return manifest
