"use strict";
/**
 * Put a WAV on the active sequence: import it into the project's "Foley" bin, then in one undoable transaction
 * lay it on an audio track that has no clip over its range, at the exact record tick; with no such track, on a
 * new one. Existing clips are never overwritten or moved: the clip is laid with an overwrite edit only where the
 * track is empty, a new track comes from an insert edit with limitShift (only the new, empty track is touched),
 * and afterwards every clip that was on the sequence is checked to be where it was.
 *
 * Premiere facts relied on (Premiere UXP DOM reference and changelog, AdobeDocs/uxp-premiere-pro @ d7ca9c8):
 * Project.importFiles(paths, suppressUI, targetBin, asNumberedStills) resolves to a boolean, not the items;
 * FolderItem.createBinAction(name, makeUnique); SequenceEditor.createOverwriteItemAction(item, time, videoTrack,
 * audioTrack) and createInsertProjectItemAction(item, time, videoTrack, audioTrack, limitShift), where an audio
 * track index past the last creates a new track; actions are created inside Project.lockedAccess (required since
 * 26.3) and added inside Project.executeTransaction(callback, undoString), whose callbacks must not await.
 */

const { PanelError } = require("./errors.js");
const { ticksOf } = require("./time.js");

const BIN_NAME = "Foley";

async function findBin(ppro, root) {
  for (const item of await root.getItems()) if (item.name === BIN_NAME && ppro.FolderItem.cast(item)) return item;
  return null;
}

/** The project's "Foley" bin, made (one undo step of its own) when there is none. */
async function foleyBin(ppro, project) {
  const root = await project.getRootItem();
  const existing = await findBin(ppro, root);
  if (existing) return existing;
  let made = false;
  project.lockedAccess(() => {
    made = project.executeTransaction((compound) => {
      compound.addAction(root.createBinAction(BIN_NAME, false));
    }, "Foley Desk: make the Foley bin");
  });
  const bin = made ? await findBin(ppro, root) : null;
  if (!bin) throw new PanelError("Premiere refused to make a 'Foley' bin; check the project is writable, then try again.");
  return bin;
}

/** Import `wavPath` into `bin` and return its project item. */
async function importWav(ppro, project, bin, wavPath) {
  if (!(await project.importFiles([wavPath], true, bin, false))) {
    throw new PanelError(`Premiere could not import ${wavPath}; check the file exists and is readable, then try again.`);
  }
  const items = await ppro.FolderItem.cast(bin).getItems();
  for (const item of items.reverse()) { // the newest import of this file
    const clip = ppro.ClipProjectItem.cast(item);
    if (clip && (await clip.getMediaFilePath()) === wavPath) return item;
  }
  throw new PanelError(`Premiere imported ${wavPath} but it is not in the 'Foley' bin; look for it in the project.`);
}

async function trackClips(ppro, track, kind, index) {
  const clips = [];
  for (const item of track.getTrackItems(ppro.Constants.TrackItemType.CLIP, false)) {
    clips.push({ key: `${kind}${index + 1}`, start: ticksOf(await item.getStartTime()),
      end: ticksOf(await item.getEndTime()), inPoint: ticksOf(await item.getInPoint()), item });
  }
  return clips;
}

/** Every clip on the sequence, as "A2 start-end in" lines (to check afterwards that none moved). */
async function sequenceClips(ppro, sequence) {
  const lines = [];
  for (const [kind, count, get] of [["V", await sequence.getVideoTrackCount(), (i) => sequence.getVideoTrack(i)],
    ["A", await sequence.getAudioTrackCount(), (i) => sequence.getAudioTrack(i)]]) {
    for (let index = 0; index < count; index += 1) {
      for (const c of await trackClips(ppro, await get(index), kind, index)) lines.push(`${c.key} ${c.start}-${c.end} ${c.inPoint}`);
    }
  }
  return lines;
}

/** The lowest audio track that plays (not muted) and has no clip over [start, end); else a new track. */
async function freeAudioTrack(ppro, sequence, start, end) {
  const count = await sequence.getAudioTrackCount();
  for (let index = 0; index < count; index += 1) {
    const track = await sequence.getAudioTrack(index);
    if (await track.isMuted()) continue;
    const clips = await trackClips(ppro, track, "A", index);
    if (clips.every((c) => c.end <= start || c.start >= end)) return { index, isNew: false };
  }
  return { index: count, isNew: true };
}

function layOn(ppro, project, sequence, item, track, startTicks, name) {
  const editor = ppro.SequenceEditor.getEditor(sequence);
  let done = false;
  project.lockedAccess(() => {
    done = project.executeTransaction((compound) => {
      const time = ppro.TickTime.createWithTicks(String(startTicks));
      compound.addAction(track.isNew ? editor.createInsertProjectItemAction(item, time, 0, track.index, true)
        : editor.createOverwriteItemAction(item, time, 0, track.index));
    }, `Foley Desk: place ${name}`);
  });
  if (!done) {
    throw new PanelError(`Premiere refused to place ${name} on audio track A${track.index + 1}; unlock the ` +
      "sequence's audio tracks, then try again. Nothing was changed.");
  }
}

/** Check the placed clip is where it was asked to be and that every clip that was there still is. */
async function checkPlaced(ppro, sequence, track, startTicks, wavPath, before, name) {
  const undo = `press Ctrl+Z (Cmd+Z) to undo 'Foley Desk: place ${name}', and report this with your Premiere version`;
  const after = new Set(await sequenceClips(ppro, sequence));
  const moved = before.filter((line) => !after.has(line));
  if (moved.length) throw new PanelError(`Premiere changed existing clips (${moved.join(", ")}) while placing; ${undo}.`);
  const clips = await trackClips(ppro, await sequence.getAudioTrack(track.index), "A", track.index);
  for (const c of clips) {
    const clip = c.start === startTicks ? ppro.ClipProjectItem.cast(await c.item.getProjectItem()) : null;
    if (clip && (await clip.getMediaFilePath()) === wavPath) return;
  }
  throw new PanelError(`Premiere did not put ${name} at tick ${startTicks} of A${track.index + 1}; ${undo}.`);
}

/**
 * Place `wavPath` ({lengthTicks} long) at `startTicks` of the active sequence; returns {track: "A3", isNew}.
 */
async function placeWav(ppro, { project, sequence, wavPath, startTicks, lengthTicks, name }) {
  const bin = await foleyBin(ppro, project);
  const item = await importWav(ppro, project, bin, wavPath);
  const track = await freeAudioTrack(ppro, sequence, startTicks, startTicks + lengthTicks);
  const before = await sequenceClips(ppro, sequence);
  layOn(ppro, project, sequence, item, track, startTicks, name);
  await checkPlaced(ppro, sequence, track, startTicks, wavPath, before, name);
  return { track: `A${track.index + 1}`, isNew: track.isNew };
}

module.exports = { placeWav, freeAudioTrack, BIN_NAME };
