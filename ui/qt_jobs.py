"""The job queue: one line per generation with its state, progress and error."""

from PySide6.QtWidgets import QListWidget

from ui.panel_model import JobRow, PanelModel

JOBS_HEIGHT = 70  # pixels: a few lines, the variants get the rest


class QtJobs(QListWidget):
    """Each job's `summary`, oldest first."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.setMaximumHeight(JOBS_HEIGHT)
        model.events.jobs.connect(self._update_jobs)

    def _update_jobs(self, jobs: list[JobRow]) -> None:
        self.clear()
        for job in jobs:
            self.addItem(job.summary)
