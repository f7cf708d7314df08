"""Runs inside headless Blender: install the add-on zip, cut a movie strip, generate foley twice, mix down.

Usage: blender -b --factory-startup --python tests/blender_scenario.py -- '<json args>'
"""

import json
import sys

import bpy

args = json.loads(sys.argv[sys.argv.index("--") + 1])
bpy.ops.preferences.addon_install(filepath=args["zip"])
bpy.ops.preferences.addon_enable(module="foley_desk")
from foley_desk import strips  # noqa: E402  (importable only once installed)

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
first = bpy.ops.sequencer.foley_generate()
movie.select = False
scene.use_preview_range = True
scene.frame_preview_start, scene.frame_preview_end = 50, 74
settings.variants, settings.seed = 1, 9
second = bpy.ops.sequencer.foley_generate()

sounds = [{"name": s.name, "channel": s.channel, "start": s.frame_final_start, "end": s.frame_final_end,
           "mute": s.mute, "path": bpy.path.abspath(s.sound.filepath)}
          for s in strips(editor) if s.type == "SOUND"]
scene.render.ffmpeg.audio_mixrate = 48000
scene.use_preview_range = False
bpy.ops.sound.mixdown(filepath=args["mix"], container="WAV", codec="PCM", format="S16", accuracy=1024)
with open(args["report"], "w") as handle:
    json.dump({"first": sorted(first), "second": sorted(second), "sounds": sounds}, handle)
