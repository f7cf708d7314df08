"use strict";
/**
 * The active sequence's selection as engine edit spans: the selected video clips (one request each), else the
 * sequence In/Out. Each request names the pictures on screen over its record range (the top enabled video track
 * wins), with the media file, its source in-point and the record range, all exact (ticks → "n/d" seconds).
 *
 * Premiere facts relied on (Premiere UXP DOM reference, AdobeDocs/uxp-premiere-pro @ d7ca9c8): every getter
 * returns a Promise, but VideoTrack.getTrackItems(type, includeEmpty) returns its array at once; track item
 * start/end times count from the sequence start, in/out points from the start of the clip's media;
 * Sequence.getTimebase() is the ticks per frame as a string; video track 0 is V1, higher tracks are on top.
 */

const { PanelError } = require("./errors.js");
const { ticksOf, secondsText, rateOfTimebase, framesAt, timecode, canDropFrame } = require("./time.js");
const { visible } = require("./visible.js");

async function activeSequence(ppro) {
  const project = await ppro.Project.getActiveProject();
  if (!project) throw new PanelError("No Premiere project is open. Open the project to work on and try again.");
  const sequence = await project.getActiveSequence();
  if (!sequence) throw new PanelError("No sequence is active. Open a sequence in the Timeline panel and try again.");
  return { project, sequence };
}

/** The sequence's frame rate, whether it shows drop-frame timecode, and its start timecode (zero point) in ticks. */
async function sequenceClock(ppro, sequence) {
  const rate = rateOfTimebase(await sequence.getTimebase());
  const display = await sequence.getSequenceVideoTimeDisplayFormat();
  const dropFrame = canDropFrame(rate) && display.type === ppro.Constants.VideoDisplayFormatType.FPS_29_97;
  const zeroTicks = ticksOf(await sequence.getZeroPoint());
  return { rate, dropFrame, zeroTicks };
}

/** How Premiere shows `ticks` on this sequence's timecode (the zero point is the timeline's first timecode). */
function showTime(ticks, clock) {
  return timecode(framesAt(clock.zeroTicks + ticks, clock.rate), clock.rate, clock.dropFrame);
}

async function clipPiece(item, layer) {
  if ((await item.isDisabled()) || (await item.isAdjustmentLayer())) return null; // not pictures on screen
  const whole = { recordStart: ticksOf(await item.getStartTime()), recordEnd: ticksOf(await item.getEndTime()),
    sourceStart: ticksOf(await item.getInPoint()) };
  return { layer, item, whole, ...whole, name: await item.getName(), selected: await item.getIsSelected() };
}

/** Every enabled clip on every video track whose output is on. */
async function videoPieces(ppro, sequence) {
  const pieces = [];
  const count = await sequence.getVideoTrackCount();
  for (let index = 0; index < count; index += 1) {
    const track = await sequence.getVideoTrack(index);
    if (await track.isMuted()) continue;
    for (const item of track.getTrackItems(ppro.Constants.TrackItemType.CLIP, false)) {
      const piece = await clipPiece(item, index);
      if (piece) pieces.push(piece);
    }
  }
  return pieces;
}

/** The ranges to make foley for: each selected video clip, else the sequence In/Out. */
async function chosenRanges(sequence, pieces) {
  const selected = pieces.filter((p) => p.selected);
  if (selected.length) return selected.map((p) => ({ label: p.name, start: p.recordStart, end: p.recordEnd }));
  const [start, end] = [ticksOf(await sequence.getInPoint()), ticksOf(await sequence.getOutPoint())];
  if (end > start) return [{ label: "In/Out", start, end }];
  throw new PanelError("Select video clips in the timeline, or mark an In and an Out point on the sequence, " +
    "then read the selection again.");
}

function refuse(name, what) {
  return new PanelError(`Clip '${name}' ${what}; the generated sound would drift from the picture. Remove it ` +
    "for the foley pass (or render the range to a file and use that), then read the selection again.");
}

/** The media file a piece shows, after refusing what the engine cannot follow (speed, reverse, remaps, nests). */
async function mediaOf(ppro, piece, rate) {
  const { item, name } = piece;
  const speed = await item.getSpeed(); // 1 = 100 %, as ExtendScript's TrackItem.getSpeed()
  if (speed !== 1) throw refuse(name, `plays at ${Math.round(speed * 1000) / 10} % speed`);
  if (await item.isSpeedReversed()) throw refuse(name, "plays in reverse");
  const { whole } = piece; // the clip's own trim, not this piece of it
  const drift = ticksOf(await item.getOutPoint()) - whole.sourceStart - (whole.recordEnd - whole.recordStart);
  if ((drift < 0n ? -drift : drift) >= rate.ticksPerFrame) throw refuse(name, "has time remapping");
  const clip = ppro.ClipProjectItem.cast(await item.getProjectItem());
  if (clip && (await clip.isSequence())) {
    throw new PanelError(`Clip '${name}' is a nested sequence; foley reads only clips placed on the sequence ` +
      "itself. Select a range without it, or open the nested sequence and generate there.");
  }
  const path = clip ? await clip.getMediaFilePath() : "";
  if (!path) {
    throw new PanelError(`Clip '${name}' has no media file (a title, graphic or matte); foley needs filmed ` +
      "pictures. Select a range without it.");
  }
  if (await clip.isOffline()) {
    throw new PanelError(`Clip '${name}' is offline (${path}). Relink its media in Premiere, then try again.`);
  }
  return path;
}

async function requestFor(ppro, range, pieces, clock) {
  const shown = visible(pieces, range.start, range.end);
  if (!shown.length) {
    throw new PanelError(`No video clip shows in '${range.label}' (${showTime(range.start, clock)} to ` +
      `${showTime(range.end, clock)}); foley is generated from pictures. Select a range with video.`);
  }
  const edit = [];
  for (const piece of shown) {
    edit.push({ media: await mediaOf(ppro, piece, clock.rate), record_start: secondsText(piece.recordStart),
      record_end: secondsText(piece.recordEnd), source_start: secondsText(piece.sourceStart) });
  }
  return { label: range.label, startTicks: range.start, endTicks: range.end, start: secondsText(range.start),
    end: secondsText(range.end), inTimecode: showTime(range.start, clock), outTimecode: showTime(range.end, clock),
    edit };
}

/**
 * The active sequence's selection resolved to requests: {label, startTicks, endTicks, start, end (exact seconds),
 * inTimecode, outTimecode (the frame after the range, as Premiere shows it), edit (engine spans)}.
 */
async function readSelection(ppro) {
  const { project, sequence } = await activeSequence(ppro);
  const clock = await sequenceClock(ppro, sequence);
  const pieces = await videoPieces(ppro, sequence);
  const requests = [];
  for (const range of await chosenRanges(sequence, pieces)) requests.push(await requestFor(ppro, range, pieces, clock));
  return { projectPath: project.path, sequenceName: sequence.name, clock, requests };
}

module.exports = { readSelection, activeSequence, sequenceClock, showTime };
