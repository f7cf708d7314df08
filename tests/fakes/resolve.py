"""A stand-in for DaVinci Resolve's scripting objects, following the documented API and its field-reported quirks.

Only methods listed in Resolve's README for the emulated version exist (others raise AttributeError, so the
bridge is caught calling them); calls fail by returning None/False/[] as Resolve's do. Quirks modelled:
timelines start at frame 86400, `recordFrame` is absolute, `endFrame` is exclusive, a WAV's frames count at the
clip's FPS property 24, In/Out marks are relative to the timeline start and inclusive, and importing a path that
is already in the current bin returns the existing item.
"""

from fractions import Fraction
from pathlib import Path

WAV_FPS = "24"


class FakeScriptModule:
    """Plays `DaVinciResolveScript`: `scriptapp("Resolve")` returns the app, or None when it is not reachable."""

    def __init__(self, resolve=None):
        self.resolve = resolve

    def scriptapp(self, name):
        return self.resolve if name == "Resolve" else None


class _Versioned:
    """Hides methods newer than the emulated Resolve."""

    SINCE: dict[str, tuple[int, ...]] = {}

    def __init__(self, app):
        self._app = app

    def __getattribute__(self, name):
        since = type(self).SINCE.get(name)
        if since is not None and object.__getattribute__(self, "_app").version < since:
            raise AttributeError(f"'{type(self).__name__}' has no attribute '{name}' before Resolve {since}")
        return object.__getattribute__(self, name)


class FakeMediaPoolItem:
    def __init__(self, path: str, fps: str):
        self.path, self.fps = path, fps

    def GetName(self):
        return Path(self.path).name

    def GetClipProperty(self, key=None):
        props = {"File Path": self.path, "FPS": self.fps, "Clip Name": self.GetName()}
        return props if key is None else props.get(key, "")


class FakeTimelineItem(_Versioned):
    SINCE = {"GetSourceStartFrame": (19, 0, 2), "GetSourceEndFrame": (19, 0, 2)}

    def __init__(self, app, name, start, duration, source_start, source_end, pool_item):
        super().__init__(app)
        self.name, self.start, self.duration = name, start, duration
        self.source_start, self.source_end, self.pool_item = source_start, source_end, pool_item

    def GetName(self):
        return self.name

    def GetStart(self):
        return self.start

    def GetEnd(self):
        return self.start + self.duration  # exclusive

    def GetDuration(self):
        return self.duration

    def GetLeftOffset(self):
        return self.source_start

    def GetSourceStartFrame(self):
        return self.source_start

    def GetSourceEndFrame(self):
        return self.source_end

    def GetMediaPoolItem(self):
        return self.pool_item


class FakeFolder:
    def __init__(self, name):
        self.name, self.items, self.subfolders = name, [], []

    def GetName(self):
        return self.name

    def GetClipList(self):
        return list(self.items)


class FakeMediaPool(_Versioned):
    def __init__(self, app):
        super().__init__(app)
        self.root = FakeFolder("Master")
        self.current = self.root

    def GetRootFolder(self):
        return self.root

    def GetCurrentFolder(self):
        return self.current

    def AddSubFolder(self, parent, name):
        folder = FakeFolder(name)
        parent.subfolders.append(folder)
        return folder

    def SetCurrentFolder(self, folder):
        self.current = folder
        return True

    def ImportMedia(self, paths):
        items = []
        for path in paths:
            existing = [i for i in self.current.items if i.path == path]
            if existing:  # quirk: the same file in the same bin comes back as the old item
                items.append(existing[0])
            elif Path(path).is_file():
                item = FakeMediaPoolItem(path, WAV_FPS if path.lower().endswith(".wav") else "25")
                self.current.items.append(item)
                items.append(item)
        return items

    def AppendToTimeline(self, clip_infos):
        timeline = self._app.project.timeline
        placed = []
        for info in clip_infos:
            item = info["mediaPoolItem"]
            kind = "audio" if info.get("mediaType") == 2 else "video"
            track = info.get("trackIndex", 1) if self._app.version >= (18, 5) else 1
            if track > timeline.GetTrackCount(kind):
                return []
            frames = info["endFrame"] - info["startFrame"]  # endFrame is exclusive
            seconds = Fraction(frames) / Fraction(item.fps)
            duration = round(seconds * timeline.rate)
            lane = timeline.tracks[kind][track - 1]
            start = info["recordFrame"] if "recordFrame" in info else timeline.start + max(
                (i.GetEnd() - timeline.start for i in lane["items"]), default=0)
            placed_item = FakeTimelineItem(self._app, item.GetName(), start, duration, info["startFrame"],
                                           info["endFrame"], item)
            lane["items"].append(placed_item)
            placed.append(placed_item)
        return placed


class FakeTimeline(_Versioned):
    SINCE = {"GetMarkInOut": (19, 1), "AddTrack": (18, 5), "DeleteClips": (18, 5)}

    def __init__(self, app, name, rate_text, start):
        super().__init__(app)
        self.name, self.rate_text, self.start = name, rate_text, start
        self.rate = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001)}.get(rate_text, Fraction(rate_text))
        self.tracks = {"video": [{"name": "V1", "items": []}], "audio": [{"name": "A1", "items": []}]}
        self.marks = {}
        self.current_video_item = None

    def GetName(self):
        return self.name

    def GetStartFrame(self):
        return self.start

    def GetSetting(self, key=None):
        return {"timelineFrameRate": self.rate_text}.get(key, "")

    def GetTrackCount(self, kind):
        return len(self.tracks[kind])

    def GetTrackName(self, kind, index):
        return self.tracks[kind][index - 1]["name"] if 1 <= index <= len(self.tracks[kind]) else ""

    def SetTrackName(self, kind, index, name):
        if not 1 <= index <= len(self.tracks[kind]):
            return False
        self.tracks[kind][index - 1]["name"] = name
        return True

    def GetItemListInTrack(self, kind, index):
        return list(self.tracks[kind][index - 1]["items"]) if 1 <= index <= len(self.tracks[kind]) else None

    def GetMarkInOut(self):
        return self.marks

    def GetCurrentVideoItem(self):
        return self.current_video_item

    def AddTrack(self, kind, subtype=None):
        self.tracks[kind].append({"name": f"{kind[0].upper()}{len(self.tracks[kind]) + 1}", "items": []})
        return True

    def DeleteClips(self, items, ripple=False):
        for track in self.tracks["audio"] + self.tracks["video"]:
            track["items"] = [i for i in track["items"] if i not in items]
        return True

    def add_video(self, name, record, duration, source_start, source_end, path, fps):
        """Test set-up: a clip on V1 at record frame `record` (absolute)."""
        item = FakeTimelineItem(self._app, name, record, duration, source_start, source_end,
                                FakeMediaPoolItem(str(path), fps))
        self.tracks["video"][0]["items"].append(item)
        return item


class FakeProject:
    def __init__(self, app, timeline):
        self.timeline = timeline  # the current one
        self.timelines = [timeline]
        self.media_pool = FakeMediaPool(app)

    def GetName(self):
        return "Foley test"

    def GetCurrentTimeline(self):
        return self.timeline

    def GetTimelineCount(self):
        return len(self.timelines)

    def GetTimelineByIndex(self, index):  # 1-based; None out of range, as Resolve answers
        return self.timelines[index - 1] if 1 <= index <= len(self.timelines) else None

    def SetCurrentTimeline(self, timeline):
        if timeline not in self.timelines:
            return False
        self.timeline = timeline
        return True

    def GetMediaPool(self):
        return self.media_pool


class FakeProjectManager:
    def __init__(self, project):
        self.project = project

    def GetCurrentProject(self):
        return self.project


class FakeResolve:
    def __init__(self, version=(19, 1, 0), rate_text="24", start=86400):
        self.version = tuple(version)
        self.project = FakeProject(self, FakeTimeline(self, "Edit 1", rate_text, start))

    def GetVersion(self):
        return [*self.version, 0, ""][:5]

    def GetProductName(self):
        return "DaVinci Resolve Studio"

    def GetProjectManager(self):
        return FakeProjectManager(self.project)
