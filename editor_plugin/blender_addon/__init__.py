"""Foley Desk for Blender's Video Sequencer: generate foley for the selected movie strips (or the preview range)
on a Foley Desk engine and add the variants as sound strips at the exact frame, each carrying the model, seed and
prompt it was made with. The sampling follows the chosen model's own presets; a prompt goes only to a model that
takes text.

Runs inside Blender's own Python: bpy plus the standard library only. `foley_client` and `foley_edit` are the
engine's `engine/serving/client.py` and `editor_plugin/edit.py`, copied into the add-on zip by `foley blender-addon`.
"""

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import foley_client
from .foley_edit import Layered, visible

bl_info = {
    "name": "Foley Desk",
    "author": "Foley Desk",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Sequencer > Sidebar > Foley",
    "description": "Generate synchronised foley for movie strips with a local Foley Desk engine",
    "category": "Sequencer",
}

RATE_DENOMINATOR_LIMIT = 10_000  # Blender stores fps_base and strip fps as float32; NTSC rates are n/1001
QUALITIES = (("draft", "Draft", "The model's draft sampling preset (VTA-LDM: 10 steps)"),
             ("fast", "Fast", "The model's fast sampling preset"),
             ("reference", "Published method", "The model's published sampling (VTA-LDM: 300 DDPM steps, slow)"))
# the engine's /v1/models entries as last fetched (this session only: the engine's models may change between them)
known_models: list[dict] = []


class AddonError(Exception):
    """A problem the user can fix; its message is shown in Blender's status bar."""


@dataclass(frozen=True)
class Request:
    """One generation: a record range in scene frames, its edit in seconds, and a name for the files."""

    first: int
    after: int
    start: Fraction
    end: Fraction
    edit: list[dict]
    name: str


def strips(editor):
    """Top-level strips: `strips` since Blender 4.4, `sequences` before."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor):
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def scene_rate(scene) -> Fraction:
    return (Fraction(scene.render.fps) / Fraction(scene.render.fps_base)).limit_denominator(RATE_DENOMINATOR_LIMIT)


def check_strip(strip, rate: Fraction) -> None:
    movie_rate = Fraction(strip.fps).limit_denominator(RATE_DENOMINATOR_LIMIT)
    if movie_rate != rate:
        raise AddonError(f"Strip '{strip.name}' is {float(movie_rate):.3f} fps in a {float(rate):.3f} fps scene, so "
                         "Blender plays it at another speed and foley would drift. Set the scene frame rate to the "
                         "movie's (Output Properties > Frame Rate).")
    if getattr(strip, "speed_factor", 1.0) != 1.0:
        raise AddonError(f"Strip '{strip.name}' plays at {strip.speed_factor:g}x speed; foley would drift. Set its "
                         "speed to 1 for the foley pass.")


def requests_for(scene) -> list[Request]:
    """Selected movie strips, one request each; with none selected, the preview range (or the scene range)."""
    editor = scene.sequence_editor
    if editor is None:
        raise AddonError("The scene has no sequencer strips. Add a movie strip first.")
    rate, origin = scene_rate(scene), scene.frame_start
    movies = [s for s in all_strips(editor) if s.type == "MOVIE" and not s.mute]
    selected = [s for s in movies if s.select]
    if selected:
        ranges = [(s.frame_final_start, s.frame_final_end, s.name) for s in selected]
    elif scene.use_preview_range:
        ranges = [(scene.frame_preview_start, scene.frame_preview_end + 1, "preview range")]
    else:
        ranges = [(scene.frame_start, scene.frame_end + 1, "scene range")]

    def seconds(frame) -> Fraction:
        return Fraction(frame - origin) / rate

    pieces = [Layered(s.channel, seconds(s.frame_final_start), seconds(s.frame_final_end),
                      Fraction(int(s.frame_offset_start) + s.animation_offset_start) / rate, s) for s in movies]
    requests = []
    for first, after, name in ranges:
        shown = visible(pieces, seconds(first), seconds(after))
        if not shown:
            raise AddonError(f"No movie strip shows between frames {first} and {after - 1}; foley is generated "
                             "from pictures.")
        for piece in shown:
            check_strip(piece.item, rate)
        edit = [{"media": bpy.path.abspath(p.item.filepath), "record_start": str(p.record_start),
                 "record_end": str(p.record_end), "source_start": str(p.source_start)} for p in shown]
        requests.append(Request(first, after, seconds(first), seconds(after), edit, name))
    return requests


def connect(settings):
    if settings.engine_url:
        return foley_client.EngineClient(settings.engine_url, settings.engine_token)
    return foley_client.EngineClient.connect(start=True, command=engine_command())


def engine_command() -> list[str] | None:
    """FOLEY_ENGINE_COMMAND when set, else the command `foley blender-addon` recorded: the Python Foley Desk is
    installed in (never a `foley` looked up on PATH)."""
    recorded = Path(__file__).with_name("engine_command.json")
    if os.environ.get("FOLEY_ENGINE_COMMAND") or not recorded.is_file():
        return None  # the client reads the variable itself
    return json.loads(recorded.read_text())


def output_dir(settings) -> Path:
    if settings.output.startswith("//") and not bpy.data.filepath:
        return Path(tempfile.gettempdir()) / "foley-desk"  # an unsaved .blend has no folder for "//"
    return Path(bpy.path.abspath(settings.output))


def run_job(client, request: Request, params: dict, out_dir: Path, progress: dict) -> list[Path]:
    """Submit, follow and download one request (no bpy here: this runs on a worker thread)."""
    job = client.submit_edit(request.edit, str(request.start), str(request.end), source=request.name, **params)
    progress["job"] = job["id"]

    def note(event):
        if event["event"] == "progress":
            progress["text"] = f"{request.name}: {foley_client.progress_text(event)}"

    client.wait(job["id"], on_event=note)
    return client.download(job["id"], out_dir)


def free_channel(editor, first: int, after: int, count: int) -> int:
    """The lowest channel from which `count` channels are empty over [first, after)."""
    busy = {s.channel for s in all_strips(editor) if s.frame_final_start < after and s.frame_final_end > first}
    channel = 1
    while any(c in busy for c in range(channel, channel + count)):
        channel += 1
    return channel


def place(scene, request: Request, wavs: list[Path]) -> list:
    """Add one sound strip per variant at the request's first frame; variants after the first start muted. Each
    strip's custom properties say what made it (from the variant's sidecar), so takes can be told apart."""
    editor = scene.sequence_editor
    channel = free_channel(editor, request.first, request.after, len(wavs))
    added = []
    for number, wav in enumerate(wavs):
        strip = strips(editor).new_sound(f"Foley {wav.stem}", str(wav), channel + number, request.first)
        strip.mute = number > 0
        note_origin(strip, wav.with_suffix(".json"))
        added.append(strip)
    return added


def note_origin(strip, sidecar: Path) -> None:
    """The model, seed and prompts the variant was made with, as the strip's custom properties."""
    if not sidecar.is_file():
        return
    made = json.loads(sidecar.read_text())
    strip["foley_model"] = made["model"]["name"]
    strip["foley_seed"] = made["seed"]
    strip["foley_prompt"] = made.get("prompt", "")
    strip["foley_negative_prompt"] = made.get("negative_prompt", "")


def remember_models(client) -> list[dict]:
    """Fetch the engine's models and keep them for drawing the panel."""
    known_models[:] = client.models()
    return known_models


def find_model(models: list[dict], name: str) -> dict | None:
    """The entry of model `name` (empty: the engine's default), or None."""
    if not name:
        return next((entry for entry in models if entry.get("default")), models[0] if models else None)
    return next((entry for entry in models if entry["name"] == name), None)


def model_entry(models: list[dict], name: str) -> dict:
    entry = find_model(models, name)
    if entry is None:
        offered = ", ".join(m["name"] for m in models) or "none"
        raise AddonError(f"The engine has no model '{name}' (it offers: {offered}). Correct the Model field, or "
                         "leave it empty for the engine's default.")
    return entry


def sampling_of(entry: dict, settings) -> dict:
    """The chosen quality as this model samples it (its own sampler, spacing, steps and guidance: MMAudio refuses
    VTA-LDM's samplers), with the steps and guidance set in the panel when they are not 0."""
    preset = dict(entry.get("sampling_presets", {}).get(settings.quality, {}))  # an older engine: its defaults
    if settings.steps:
        preset["steps"] = settings.steps
    if settings.guidance:
        preset["guidance"] = settings.guidance
    return {key: preset[key] for key in ("sampler", "spacing", "steps", "guidance") if key in preset}


def job_params(settings, entry: dict) -> tuple[dict, str]:
    """What goes with each job for model `entry`, and a note for the user ("" when there is nothing to say)."""
    params = {"seeds": [settings.seed + i for i in range(settings.variants)], "model": entry["name"],
              **sampling_of(entry, settings)}
    prompt = (settings.prompt.strip(), settings.negative_prompt.strip())
    if entry.get("takes_text"):
        params["prompt"], params["negative_prompt"] = prompt
        return params, ""
    note = f"model '{entry['name']}' takes no text prompt: generated from the picture alone" if any(prompt) else ""
    return params, note


def prompt_state(settings) -> tuple[bool, str]:
    """Whether the panel shows the prompt fields for the chosen model, and if not, why."""
    entry = find_model(known_models, settings.model)
    if entry is None or entry.get("takes_text"):
        return True, ""  # not fetched yet: shown, and checked when the job is made
    return False, f"{entry['name']} takes no text prompt: the picture alone decides the sound"


def recipe(entry: dict, settings) -> str:
    """The sampling a job would use, in one line for the panel."""
    sampling = {"sampler": "?", "steps": "?", "guidance": "?", **sampling_of(entry, settings)}
    return f"{sampling['sampler']}, {sampling['steps']} steps, guidance {sampling['guidance']}"


class FoleySettings(bpy.types.PropertyGroup):
    variants: IntProperty(name="Variants", default=2, min=1, max=16)
    seed: IntProperty(name="Seed", default=1, min=0)
    quality: EnumProperty(name="Quality", items=QUALITIES, default="fast",
                          description="Which of the model's own sampling presets")
    steps: IntProperty(name="Steps", default=0, min=0, max=1000, description="Sampling steps; 0: the model's own")
    guidance: FloatProperty(name="Guidance", default=0.0, min=0.0, max=20.0,
                            description="Classifier-free guidance; 0: the model's own (guidance differs by model)")
    model: StringProperty(name="Model", default="", description="Engine model name; empty for the engine's default")
    prompt: StringProperty(name="Prompt", default="", description="The sound to make, for a model that takes text "
                           "(e.g. footsteps on gravel)")
    negative_prompt: StringProperty(name="Negative", default="", description="What to steer away from (e.g. music)")
    engine_url: StringProperty(name="Engine", default="", description="Empty: the local engine (started if needed)")
    engine_token: StringProperty(name="Token", default="", subtype="PASSWORD")
    output: StringProperty(name="Folder", default="//foley", subtype="DIR_PATH")
    status: StringProperty(name="Status", default="")


class SEQUENCER_OT_foley_generate(bpy.types.Operator):
    """Generate foley for the selected movie strips (or the preview range) and add it as sound strips"""

    bl_idname = "sequencer.foley_generate"
    bl_label = "Generate Foley"
    bl_options = {"REGISTER", "UNDO"}

    _thread = None
    _timer = None

    def execute(self, context):
        """Blocking run (scripts and background mode)."""
        settings = context.scene.foley
        try:
            requests = requests_for(context.scene)
            client = connect(settings)
            params, note = job_params(settings, model_entry(remember_models(client), settings.model))
            placed = 0
            for request in requests:
                wavs = run_job(client, request, params, output_dir(settings), {})
                placed += len(place(context.scene, request, wavs))
        except (AddonError, foley_client.EngineError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Foley Desk: added {placed} sound strip(s)" + (f"; {note}" if note else ""))
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        settings = context.scene.foley
        try:
            self._requests = requests_for(context.scene)
            self._client = connect(settings)
            params, self._note = job_params(settings, model_entry(remember_models(self._client), settings.model))
        except (AddonError, foley_client.EngineError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._progress = {"text": "queued"}
        self._results: list = []
        out = output_dir(settings)

        def work():
            try:
                for request in self._requests:
                    self._results.append((request, run_job(self._client, request, params, out, self._progress)))
            except foley_client.EngineError as exc:
                self._progress["error"] = str(exc)

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        settings = context.scene.foley
        if event.type == "ESC" and "job" in self._progress:
            self._client.cancel(self._progress["job"])
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        settings.status = self._progress.get("text", "")
        if self._thread.is_alive():
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        if "error" in self._progress:
            settings.status = self._progress["error"]
            self.report({"ERROR"}, self._progress["error"])
            return {"CANCELLED"}
        placed = sum(len(place(context.scene, request, wavs)) for request, wavs in self._results)
        settings.status = f"added {placed} sound strip(s)" + (f"; {self._note}" if self._note else "")
        return {"FINISHED"}


class SEQUENCER_OT_foley_models(bpy.types.Operator):
    """Ask the engine which models it offers, and whether the chosen one takes a text prompt"""

    bl_idname = "sequencer.foley_models"
    bl_label = "Check Model"

    def execute(self, context):
        settings = context.scene.foley
        try:
            entry = model_entry(remember_models(connect(settings)), settings.model)
        except (AddonError, foley_client.EngineError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        text = "takes a text prompt" if entry.get("takes_text") else "takes no text prompt"
        self.report({"INFO"}, f"Foley Desk: {entry['name']} ({entry.get('family', '?')}) {text}")
        return {"FINISHED"}


class SEQUENCER_PT_foley(bpy.types.Panel):
    bl_label = "Foley Desk"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Foley"

    def draw(self, context):
        settings = context.scene.foley
        layout = self.layout
        row = layout.row(align=True)
        row.prop(settings, "model")
        row.operator(SEQUENCER_OT_foley_models.bl_idname, text="", icon="FILE_REFRESH")
        shown, reason = prompt_state(settings)
        if shown:
            layout.prop(settings, "prompt")
            layout.prop(settings, "negative_prompt")
        else:
            layout.label(text=reason, icon="INFO")
        for name in ("variants", "seed", "quality", "steps", "guidance"):
            layout.prop(settings, name)
        entry = find_model(known_models, settings.model)
        if entry is not None:
            layout.label(text=f"{entry['name']}: {recipe(entry, settings)}")
        for name in ("output", "engine_url", "engine_token"):
            layout.prop(settings, name)
        layout.operator(SEQUENCER_OT_foley_generate.bl_idname, icon="SOUND")
        if settings.status:
            layout.label(text=settings.status)


CLASSES = (FoleySettings, SEQUENCER_OT_foley_generate, SEQUENCER_OT_foley_models, SEQUENCER_PT_foley)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.foley = PointerProperty(type=FoleySettings)


def unregister():
    del bpy.types.Scene.foley
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
