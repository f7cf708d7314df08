"use strict";
/**
 * Which clip is on screen when: the rule of editor_plugin/edit.py (`visible`), in ticks. Pieces are
 * {layer, recordStart, recordEnd, sourceStart, item} with BigInt ticks; a higher layer is on top (V2 over V1).
 */

function visible(pieces, start, end) {
  const inside = new Set([start, end]);
  for (const p of pieces) {
    for (const t of [p.recordStart, p.recordEnd]) if (start < t && t < end) inside.add(t);
  }
  const cuts = [...inside].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const shown = [];
  for (let i = 0; i + 1 < cuts.length; i += 1) {
    const [begin, finish] = [cuts[i], cuts[i + 1]];
    const covering = pieces.filter((p) => p.recordStart <= begin && begin < p.recordEnd);
    if (!covering.length) continue;
    const top = covering.reduce((best, p) => (p.layer > best.layer ? p : best));
    const last = shown[shown.length - 1];
    if (last && last.item === top.item && last.recordEnd === begin) {
      last.recordEnd = finish;
    } else {
      shown.push({ ...top, recordStart: begin, recordEnd: finish,
        sourceStart: top.sourceStart + (begin - top.recordStart) });
    }
  }
  return shown;
}

module.exports = { visible };
