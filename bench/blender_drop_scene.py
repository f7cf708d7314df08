"""Runs inside headless Blender (called by `bench/demo_sync.py --scene blender`): a rigid-body scene the synthetic
generator never drew — a body dropped onto a floor, bouncing, rendered by Cycles with its own lighting and
perspective camera — and the body's height at every frame, from which the bench finds the impacts.

Usage: blender -b --factory-startup --python bench/blender_drop_scene.py -- '<json args>'
"""

import json
import math
import sys

import bpy

args = json.loads(sys.argv[sys.argv.index("--") + 1])
scene = bpy.context.scene
for thing in list(bpy.data.objects):
    bpy.data.objects.remove(thing)
scene.render.fps, scene.render.fps_base = args["fps"], 1.0
scene.frame_start, scene.frame_end = 1, args["frames"]
scene.render.resolution_x, scene.render.resolution_y = args["size"], args["size"]
scene.render.engine = "CYCLES"
scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 4, False
scene.render.threads_mode, scene.render.threads = "FIXED", 1
scene.render.image_settings.file_format = "PNG"
scene.render.filepath = args["out"] + "/frame_"

bpy.ops.mesh.primitive_plane_add(size=20)
floor = bpy.context.object
bpy.ops.rigidbody.world_add()
bpy.ops.rigidbody.object_add(type="PASSIVE")
floor.rigid_body.restitution = 1.0
floor.rigid_body.collision_shape = "MESH"
shape = bpy.ops.mesh.primitive_uv_sphere_add if args["body"] == "sphere" else bpy.ops.mesh.primitive_cube_add
shape(location=(0, 0, args["height"]))
body = bpy.context.object
bpy.ops.rigidbody.object_add(type="ACTIVE")
body.rigid_body.restitution = args["restitution"]
body.rigid_body.collision_shape = "SPHERE" if args["body"] == "sphere" else "BOX"
world = scene.rigidbody_world
world.point_cache.frame_end = args["frames"]
world.substeps_per_frame, world.solver_iterations = 60, 50  # contacts resolved to 1/1440 s at 24 fps
for item in (floor, body):  # no collision margin (it would stop the body short of the floor) and no air drag
    item.rigid_body.use_margin, item.rigid_body.collision_margin = True, 0.0
body.rigid_body.linear_damping = body.rigid_body.angular_damping = 0.0

for item, colour in ((floor, (0.55, 0.45, 0.35, 1)), (body, (0.8, 0.15, 0.1, 1))):
    material = bpy.data.materials.new(item.name)
    material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = colour
    item.data.materials.append(material)
bpy.ops.object.light_add(type="SUN", rotation=(0.6, 0.3, 0.0))
bpy.context.object.data.energy = 4.0
bpy.ops.object.camera_add(location=(0, -9, 2.5), rotation=(math.radians(82), 0, 0))
scene.camera = bpy.context.object

heights = []
for frame in range(1, args["frames"] + 1):
    scene.frame_set(frame)
    heights.append(body.matrix_world.translation.z)
with open(args["out"] + "/heights.json", "w") as out:
    json.dump({"heights": heights}, out)
bpy.ops.render.render(animation=True)
