"""What the user touches: the `foley` command (`ui.cli`, families in `ui.commands`) and the PySide6 panel (`ui.app`,
`ui.panel_model` deciding, the `ui.qt_*` widgets showing)."""
