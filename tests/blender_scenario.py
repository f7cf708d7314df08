"""Runs inside headless Blender: install the add-on zip, cut a movie strip, generate foley twice, mix down; then
generate with a model that takes text, with a prompt.

Usage: blender -b --factory-startup --python tests/blender_scenario.py -- '<json args>'
"""

import json
import sys

import bpy

args = json.loads(sys.argv[sys.argv.index("--") + 1])
bpy.ops.preferences.addon_install(filepath=args["zip"])
bpy.ops.preferences.addon_enable(module="foley_desk")
import foley_desk  # noqa: E402  (importable only once installed)
from foley_desk import strips  # noqa: E402

scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = 25, 1.0
scene.frame_start, scene.frame_end = 1, 150
editor = scene.sequence_editor_create()
movie = strips(editor).new_movie("shot", args["video"], 1, 11)  # the clip starts at frame 11
movie.frame_offset_start = 25  # trimmed by one second: shows from frame 36, source in-point 1 s
insert = strips(editor).new_movie("insert", args["video"], 2, 60)  # on top for frames 60-69
insert.frame_offset_end = insert.frame_final_duration - 10
for strip in (movie, insert):
    strip.select = False
movie.select = True

settings = scene.foley
settings.variants, settings.steps, settings.seed, settings.model = 2, 1, 5, args["model"]
settings.output = args["out"]
settings.prompt = "rain on a window"  # typed before the add-on knew the model takes no text
before = foley_desk.prompt_state(settings)
first = bpy.ops.sequencer.foley_generate()
after = foley_desk.prompt_state(settings)
movie.select = False
scene.use_preview_range = True
scene.frame_preview_start, scene.frame_preview_end = 50, 74
settings.variants, settings.seed = 1, 9
second = bpy.ops.sequencer.foley_generate()



def sound_strips() -> list[dict]:
    return [{"name": s.name, "channel": s.channel, "start": s.frame_final_start, "end": s.frame_final_end,
             "mute": s.mute, "path": bpy.path.abspath(s.sound.filepath),
             "made": {key: s[key] for key in ("foley_model", "foley_seed", "foley_prompt", "foley_negative_prompt")
                      if key in s}}
            for s in strips(editor) if s.type == "SOUND"]


sounds = sound_strips()
scene.render.ffmpeg.audio_mixrate = 48000
scene.use_preview_range = False
bpy.ops.sound.mixdown(filepath=args["mix"], container="WAV", codec="PCM", format="S16", accuracy=1024)

# a model that takes text, at its own sampling preset (steps and guidance 0), over the preview range
settings.model, settings.steps, settings.guidance, settings.seed = args["text_model"], 2, 0.0, 3
settings.prompt, settings.negative_prompt = "footsteps on gravel", "music"
scene.use_preview_range = True
text = bpy.ops.sequencer.foley_generate()
texts = [s for s in sound_strips() if s["name"] not in {sound["name"] for sound in sounds}]
entry = foley_desk.find_model(foley_desk.known_models, settings.model)
report = {"first": sorted(first), "second": sorted(second), "sounds": sounds, "text": sorted(text),
          "text_sounds": texts, "text_params": foley_desk.job_params(settings, entry),
          "text_recipe": foley_desk.recipe(entry, settings),
          "prompt_state": {"unknown": before, args["model"]: after,
                           args["text_model"]: foley_desk.prompt_state(settings)}}
with open(args["report"], "w") as handle:
    json.dump(report, handle)
