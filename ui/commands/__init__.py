"""The `foley` commands, one module per family; `ui.cli` puts them together."""
