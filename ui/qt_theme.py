"""The dark look the editors share (Kdenlive's Breeze Dark, Resolve, Reaper): one palette, one set of colours."""

from typing import TypeVar

from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import QApplication, QBoxLayout

WINDOW = "#232427"
BASE = "#1b1c1f"  # timeline, tables, waveforms
PANEL = "#2b2d31"  # track lanes, headers
TEXT = "#d8d9dc"
DIM_TEXT = "#8b8e94"
ACCENT = "#3d8fd6"  # selection highlight, as Kdenlive's
VIDEO_CLIP = "#4a6ea9"
AUDIO_CLIP = "#3b7f74"
FOLEY_CLIP = "#5a9a55"
SELECTION = "#f0b429"
PLAYHEAD = "#ff4d4d"
WAVEFORM = "#7fd48f"
METER_GREEN, METER_YELLOW, METER_RED = "#4cc05a", "#e8c547", "#e5484d"
SPACING = 6  # pixels between the panel's rows and between the controls in a row

BoxLayout = TypeVar("BoxLayout", bound=QBoxLayout)

STYLE = f"""
QPushButton {{ background: #34363b; border: 1px solid #45484e; border-radius: 3px; padding: 4px 10px; }}
QPushButton:hover {{ background: #3d4046; }}
QPushButton:pressed {{ background: {ACCENT}; }}
QPushButton#primary {{ background: #2f6fae; border-color: #3d8fd6; font-weight: bold; }}
QPushButton:disabled {{ color: #6b6e74; }}
QHeaderView::section {{ background: {PANEL}; color: {DIM_TEXT}; border: 0; border-right: 1px solid {BASE};
                        padding: 3px 6px; }}
QTreeWidget, QListWidget {{ background: {BASE}; border: 1px solid #34363b; }}
QLabel#timecode {{ color: #9fe870; background: #111214; border: 1px solid #34363b; padding: 2px 8px; }}
QLabel#hint {{ color: {DIM_TEXT}; }}
QLabel#section {{ color: {DIM_TEXT}; font-weight: bold; text-transform: uppercase; }}
"""


def palette() -> QPalette:
    """Dark window and base colours with light text and a blue highlight."""
    colours = {QPalette.Window: WINDOW, QPalette.WindowText: TEXT, QPalette.Base: BASE,
               QPalette.AlternateBase: PANEL, QPalette.Text: TEXT, QPalette.Button: "#34363b",
               QPalette.ButtonText: TEXT, QPalette.Highlight: ACCENT, QPalette.HighlightedText: "#ffffff",
               QPalette.ToolTipBase: PANEL, QPalette.ToolTipText: TEXT, QPalette.PlaceholderText: DIM_TEXT}
    result = QPalette()
    for role, colour in colours.items():
        result.setColor(role, QColor(colour))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        result.setColor(QPalette.Disabled, role, QColor("#6b6e74"))
    return result


def apply_dark_theme(app: QApplication) -> None:
    """Fusion with the dark palette and style sheet, for the whole application (the panel is its own app)."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    app.setStyleSheet(STYLE)


def monospace(points: int) -> QFont:
    """The fixed-width font timecode is shown in, so digits do not jump as they change."""
    font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
    font.setPointSize(points)
    return font


def compact(layout: BoxLayout) -> BoxLayout:
    """No margins and the panel's spacing: a widget's controls sit where they would in the panel's own layout."""
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(SPACING)
    return layout
