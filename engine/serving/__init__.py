"""The engine process: HTTP server, job queue and the standard-library client (also shipped in the Blender add-on)."""
