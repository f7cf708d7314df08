"use strict";
/** The length of a WAV file in ticks, from its bytes (RIFF: the 'fmt ' sample rate and block size, the 'data' size). */

const { TICKS_PER_SECOND } = require("./time.js");

function chunkId(view, offset) {
  return String.fromCharCode(...[0, 1, 2, 3].map((i) => view.getUint8(offset + i)));
}

function wavTicks(bytes) {
  const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const view = new DataView(buffer);
  if (view.byteLength < 12 || chunkId(view, 0) !== "RIFF" || chunkId(view, 8) !== "WAVE") {
    throw new Error("the engine's variant is not a WAV file");
  }
  let rate = 0;
  let block = 0;
  for (let offset = 12; offset + 8 <= view.byteLength; offset += 8 + view.getUint32(offset + 4, true) + (view.getUint32(offset + 4, true) % 2)) {
    const id = chunkId(view, offset);
    if (id === "fmt ") [rate, block] = [view.getUint32(offset + 12, true), view.getUint16(offset + 20, true)];
    if (id === "data" && rate && block) {
      const frames = BigInt(Math.floor(view.getUint32(offset + 4, true) / block));
      return (frames * TICKS_PER_SECOND + BigInt(rate) - 1n) / BigInt(rate); // whole ticks, rounded up
    }
  }
  throw new Error("the engine's WAV has no audio data");
}

module.exports = { wavTicks };
