"use strict";
/**
 * A stand-in for Premiere's `premierepro` UXP module, following its DOM reference (AdobeDocs/uxp-premiere-pro
 * @ d7ca9c8, Premiere 25.6-26.3) and quirks:
 * - time is TickTime (254016000000 ticks per second; `ticks` is a string, createWithTicks takes a string);
 * - getters return Promises, but VideoTrack/AudioTrack.getTrackItems and the create*Action factories do not;
 * - a create*Action call outside Project.lockedAccess throws (enforced since 26.3), addAction only works inside
 *   Project.executeTransaction, whose callback (like lockedAccess's) must not be async; actions run when the
 *   callback returns, as one undo step, and a failing action rolls the whole transaction back;
 * - Project.importFiles resolves to a boolean (not the items) and cannot import a missing or unreadable file;
 * - an insert edit shifts the later clips of its tracks (all tracks unless limitShift) and an audio track index
 *   past the last makes a new track; an overwrite edit replaces whatever its range covers;
 * - wrappers are new objects on every call (no identity across calls), as UXP's are.
 * `world` holds the state as plain data (so undo restores a structured clone); tests build and inspect it.
 */

const fs = require("node:fs");

const TPS = 254016000000n;

class TickTime {
  constructor(ticks) { this._ticks = ticks; }

  get ticks() { return String(this._ticks); }

  get ticksNumber() { return Number(this._ticks); }

  get seconds() { return Number(this._ticks) / Number(TPS); }

  static createWithTicks(ticks) {
    if (typeof ticks !== "string") throw new TypeError("TickTime.createWithTicks takes ticks as a string");
    return new TickTime(BigInt(ticks));
  }

  static createWithSeconds(seconds) { return new TickTime(BigInt(Math.round(seconds * Number(TPS)))); }

  add(other) { return new TickTime(this._ticks + other._ticks); }

  subtract(other) { return new TickTime(this._ticks - other._ticks); }

  equals(other) { return this._ticks === other._ticks; }
}
TickTime.TIME_ZERO = new TickTime(0n);

// the numeric codes are ExtendScript's (Sequence.videoDisplayFormat); the plugin only compares with these names
const Constants = {
  TrackItemType: { EMPTY: 0, CLIP: 1, TRANSITION: 2, PREVIEW: 3, FEEDBACK: 4 },
  MediaType: { ANY: "any", DATA: "data", VIDEO: "video", AUDIO: "audio" },
  VideoDisplayFormatType: { FPS_23_976: 110, FPS_25: 101, FPS_29_97: 102, FPS_29_97_NON_DROP: 103,
    FEET_FRAME_16mm: 111, FEET_FRAME_35mm: 112, FRAMES: 109 },
  ContentType: { ANY: 0, SEQUENCE: 1, MEDIA: 2 },
};

/** The length in ticks of a WAV file on disk, or null when it is not one (how Premiere decides it can import it). */
function wavLength(path) {
  let data;
  try {
    data = fs.readFileSync(path);
  } catch (_) {
    return null;
  }
  if (data.length < 12 || data.toString("ascii", 0, 4) !== "RIFF" || data.toString("ascii", 8, 12) !== "WAVE") return null;
  let format = null;
  for (let at = 12; at + 8 <= data.length; at += 8 + data.readUInt32LE(at + 4) + (data.readUInt32LE(at + 4) & 1)) {
    const id = data.toString("ascii", at, at + 4);
    if (id === "fmt ") format = { rate: data.readUInt32LE(at + 12), block: data.readUInt16LE(at + 20) };
    if (id === "data" && format) {
      const frames = BigInt(Math.floor(data.readUInt32LE(at + 4) / format.block));
      return (frames * TPS + BigInt(format.rate) - 1n) / BigInt(format.rate);
    }
  }
  return null;
}

function notAsync(result, where) {
  if (result && typeof result.then === "function") {
    throw new Error(`${where}: the callback must not be async (Premiere runs it synchronously)`);
  }
}

function makePremiere(world) {
  const state = () => world.state;
  const item = (id) => state().items[id];
  const track = (kind, index) => state()[kind === "video" ? "videoTracks" : "audioTracks"][index];
  const mustLock = (name) => {
    if (!world.locked) throw new Error(`${name}: actions must be created inside Project.lockedAccess (Premiere 26.3+)`);
  };
  const action = (name, apply) => {
    mustLock(name);
    return Object.freeze({ _apply: apply, _name: name });
  };

  class ProjectItem {
    constructor(id) { this._id = id; }

    get name() { return item(this._id).name; }

    get type() { return item(this._id).kind === "bin" ? 2 : 1; }

    static cast(other) { return new ProjectItem(other._id); }
  }

  class ClipProjectItem extends ProjectItem {
    static cast(other) { return other && item(other._id).kind === "clip" ? new ClipProjectItem(other._id) : null; }

    async getMediaFilePath() { return item(this._id).path || ""; }

    async isSequence() { return Boolean(item(this._id).sequence); }

    async isOffline() { return Boolean(item(this._id).offline); }
  }

  class FolderItem extends ProjectItem {
    static cast(other) { return other && item(other._id).kind === "bin" ? new FolderItem(other._id) : null; }

    async getItems() { return item(this._id).children.map((id) => new ProjectItem(id)); }

    createBinAction(name, makeUnique) {
      const parent = this._id;
      return action("createBinAction", () => {
        const taken = item(parent).children.map((id) => item(id).name);
        const finalName = makeUnique && taken.includes(name) ? `${name} ${taken.length + 1}` : name;
        const id = world.newId();
        state().items[id] = { id, kind: "bin", name: finalName, children: [] };
        item(parent).children.push(id);
      });
    }
  }

  class TrackItem {
    constructor(kind, index, clipId) { Object.assign(this, { _kind: kind, _index: index, _clipId: clipId }); }

    _clip() {
      const clip = track(this._kind, this._index).clips.find((c) => c.id === this._clipId);
      if (!clip) throw new Error("this track item no longer exists");
      return clip;
    }

    async getStartTime() { return new TickTime(this._clip().start); }

    async getEndTime() { return new TickTime(this._clip().end); }

    async getDuration() { return new TickTime(this._clip().end - this._clip().start); }

    async getInPoint() { return new TickTime(this._clip().inPoint); }

    async getOutPoint() {
      const clip = this._clip();
      return new TickTime(clip.outPoint ?? clip.inPoint + (clip.end - clip.start));
    }

    async getName() { return this._clip().name; }

    async getIsSelected() { return Boolean(this._clip().selected); }

    async getSpeed() { return this._clip().speed ?? 1; }

    async isSpeedReversed() { return this._clip().reversed ? 1 : 0; }

    async isDisabled() { return Boolean(this._clip().disabled); }

    async isAdjustmentLayer() { return Boolean(this._clip().adjustment); }

    async getTrackIndex() { return this._index; }

    async getProjectItem() { return new ProjectItem(this._clip().media); }
  }

  class Track {
    constructor(kind, index) { Object.assign(this, { _kind: kind, _index: index }); }

    get name() { return track(this._kind, this._index).name; }

    async getIndex() { return this._index; }

    async isMuted() { return Boolean(track(this._kind, this._index).muted); }

    getTrackItems(type, includeEmpty) {
      if (!Object.values(Constants.TrackItemType).includes(type) || typeof includeEmpty !== "boolean") {
        throw new TypeError("getTrackItems(trackItemType, includeEmptyTrackItems)");
      }
      if (type !== Constants.TrackItemType.CLIP) return [];
      return [...track(this._kind, this._index).clips].sort((a, b) => (a.start < b.start ? -1 : 1))
        .map((c) => new TrackItem(this._kind, this._index, c.id));
    }
  }

  class TrackItemSelection {
    async getTrackItems() {
      const chosen = [];
      for (const kind of ["video", "audio"]) {
        state()[`${kind}Tracks`].forEach((t, index) => {
          for (const c of t.clips) if (c.selected) chosen.push(new TrackItem(kind, index, c.id));
        });
      }
      return chosen;
    }
  }

  const seq = () => state().sequence;

  class Sequence {
    get name() { return seq().name; }

    async getTimebase() { return String(seq().timebase); }

    async getSequenceVideoTimeDisplayFormat() { return { type: seq().displayType }; }

    async getZeroPoint() { return new TickTime(seq().zeroPoint ?? 0n); }

    async getInPoint() { return new TickTime(seq().inPoint ?? 0n); }

    async getOutPoint() { return new TickTime(seq().outPoint ?? 0n); }

    async getVideoTrackCount() { return state().videoTracks.length; }

    async getAudioTrackCount() { return state().audioTracks.length; }

    async getVideoTrack(index) { return index < state().videoTracks.length ? new Track("video", index) : null; }

    async getAudioTrack(index) { return index < state().audioTracks.length ? new Track("audio", index) : null; }

    async getSelection() { return new TrackItemSelection(); }
  }

  /** Make room for `length` ticks at `time` on a track: split the clip across it and move later clips on. */
  function shift(clips, time, length) {
    for (const c of [...clips]) {
      if (c.start < time && time < c.end) {
        const tail = { ...c, id: world.newId(), start: time + length, end: c.end + length,
          inPoint: c.inPoint + (time - c.start), outPoint: undefined };
        c.end = time;
        c.outPoint = undefined;
        clips.push(tail);
      } else if (c.start >= time) {
        c.start += length;
        c.end += length;
      }
    }
  }

  /** Clear [start, end) of a track: remove, trim or split what is there. */
  function clear(clips, start, end) {
    for (const c of [...clips]) {
      if (c.end <= start || c.start >= end) continue;
      if (c.start < start && c.end > end) clips.push({ ...c, id: world.newId(), start: end, inPoint: c.inPoint + (end - c.start) });
      if (c.start < start) c.end = start;
      else if (c.end > end) [c.inPoint, c.start] = [c.inPoint + (end - c.start), end];
      else clips.splice(clips.indexOf(c), 1);
    }
  }

  function lay(projectItem, time, videoIndex, audioIndex, edit) {
    const media = item(projectItem._id);
    if (!media || media.kind !== "clip") throw new Error("not a clip project item");
    const start = BigInt(time.ticks);
    const end = start + media.length;
    const targets = [];
    if (media.hasAudio) targets.push(["audio", audioIndex]);
    if (media.hasVideo) targets.push(["video", videoIndex]);
    for (const [kind, index] of targets) {
      const tracks = state()[`${kind}Tracks`];
      if (index > tracks.length || index < 0 || (index === tracks.length && !edit.insert)) throw new Error(`no ${kind} track ${index}`);
      if (index === tracks.length) tracks.push({ name: `${kind === "audio" ? "Audio" : "Video"} ${index + 1}`, clips: [] });
      if (tracks[index].locked) throw new Error(`${kind} track ${index + 1} is locked`);
    }
    if (edit.insert) {
      const touched = edit.limitShift ? targets : [...state().videoTracks.map((_, i) => ["video", i]),
        ...state().audioTracks.map((_, i) => ["audio", i])];
      for (const [kind, index] of touched) shift(track(kind, index).clips, start, media.length);
    }
    for (const [kind, index] of targets) {
      const { clips } = track(kind, index);
      if (!edit.insert) clear(clips, start, end);
      clips.push({ id: world.newId(), name: media.name, start, end, inPoint: 0n, media: media.id });
    }
  }

  class SequenceEditor {
    static getEditor(sequence) {
      if (!(sequence instanceof Sequence)) throw new TypeError("SequenceEditor.getEditor(sequence)");
      return new SequenceEditor();
    }

    createOverwriteItemAction(projectItem, time, videoTrackIndex, audioTrackIndex) {
      world.calls.push(["createOverwriteItemAction", time.ticks, videoTrackIndex, audioTrackIndex]);
      return action("createOverwriteItemAction", () => lay(projectItem, time, videoTrackIndex, audioTrackIndex, {}));
    }

    createInsertProjectItemAction(projectItem, time, videoTrackIndex, audioTrackIndex, limitShift) {
      world.calls.push(["createInsertProjectItemAction", time.ticks, videoTrackIndex, audioTrackIndex, limitShift]);
      return action("createInsertProjectItemAction",
        () => lay(projectItem, time, videoTrackIndex, audioTrackIndex, { insert: true, limitShift: Boolean(limitShift) }));
    }
  }

  class CompoundAction {
    constructor() { this._actions = []; this._open = true; }

    get empty() { return this._actions.length === 0; }

    addAction(act) {
      if (!this._open) throw new Error("CompoundAction.addAction: only inside Project.executeTransaction's callback");
      if (!act || typeof act._apply !== "function") throw new TypeError("addAction(action)");
      this._actions.push(act);
      return true;
    }
  }

  class Project {
    get path() { return state().projectPath; }

    get name() { return state().projectPath.split(/[\\/]/).pop(); }

    static async getActiveProject() { return state().projectPath === null ? null : new Project(); }

    async getActiveSequence() { return state().sequence ? new Sequence() : null; }

    async getRootItem() { return new FolderItem(state().root); }

    lockedAccess(callback) {
      world.locked += 1;
      try {
        notAsync(callback(), "Project.lockedAccess");
      } finally {
        world.locked -= 1;
      }
    }

    executeTransaction(callback, undoString) {
      const compound = new CompoundAction();
      world.locked += 1; // actions may also be made inside the transaction's callback
      try {
        notAsync(callback(compound), "Project.executeTransaction");
      } finally {
        world.locked -= 1;
        compound._open = false;
      }
      const before = structuredClone(world.state);
      try {
        for (const act of compound._actions) act._apply();
      } catch (error) {
        world.state = before;
        world.failures.push(`${undoString}: ${error.message}`);
        return false;
      }
      world.undo.push({ label: undoString, state: before });
      return true;
    }

    async importFiles(filePaths, suppressUI, targetBin, asNumberedStills) {
      if (!Array.isArray(filePaths) || typeof suppressUI !== "boolean" || typeof asNumberedStills !== "boolean") {
        throw new TypeError("importFiles(filePaths, suppressUI, targetBin, asNumberedStills)");
      }
      const bin = targetBin ? targetBin._id : state().root;
      for (const path of filePaths) {
        const length = wavLength(path);
        if (length === null) return false;
        const id = world.newId();
        state().items[id] = { id, kind: "clip", name: path.split(/[\\/]/).pop(), path, length, hasAudio: true };
        item(bin).children.push(id);
      }
      return true;
    }
  }

  const SourceMonitor = {
    async openFilePath(path) {
      if (!fs.existsSync(path)) return false;
      world.sourceMonitor = { path, playing: null };
      return true;
    },
    async play(speed) {
      if (!world.sourceMonitor) return false;
      world.sourceMonitor.playing = speed;
      return true;
    },
  };

  return { TickTime, Constants, Project, Sequence, SequenceEditor, ProjectItem, ClipProjectItem, FolderItem,
    SourceMonitor, CompoundAction };
}

/**
 * A world: a project at `projectPath` whose one open sequence has `timebase` ticks per frame, display format
 * `displayType`, and `videoTracks` / `audioTracks` of clips {name, start, end, inPoint, media, ...} (ticks as
 * BigInt); `media` lists the project's clip items {name, path, length, hasVideo, hasAudio, sequence, offline}.
 */
function makeWorld({ projectPath = "/projects/cut.prproj", sequence, videoTracks = [], audioTracks = [], media = [] }) {
  let next = 0;
  const world = { locked: 0, undo: [], failures: [], calls: [], sourceMonitor: null, newId: () => `id${(next += 1)}` };
  const items = {};
  const root = world.newId();
  items[root] = { id: root, kind: "bin", name: "root", children: [] };
  for (const m of media) {
    const id = m.id || world.newId();
    items[id] = { hasVideo: true, hasAudio: true, ...m, id, kind: "clip" };
    items[root].children.push(id);
  }
  const withIds = (tracks) => tracks.map((t, i) => ({ name: t.name || `Track ${i + 1}`, muted: t.muted, locked: t.locked,
    clips: (t.clips || []).map((c) => ({ ...c, id: world.newId() })) }));
  world.state = { projectPath, root, items, sequence, videoTracks: withIds(videoTracks), audioTracks: withIds(audioTracks) };
  world.undoLast = () => { world.state = world.undo.pop().state; };
  return world;
}

module.exports = { makePremiere, makeWorld, TPS };
