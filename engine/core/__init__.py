"""The family-independent core of a job: samplers, windows, `generate`, the job itself (`run_job`), levels and the
WAVs with their sidecars. It may import the model families and the foundations (`engine.config`, `engine.video`, …)."""
