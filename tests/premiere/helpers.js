"use strict";
/** Shared by the node tests: Premiere's timebases, a WAV writer and a world with the fake `premierepro`. */

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { makePremiere, makeWorld } = require("./fake_premierepro.js");

// ticks per frame as Sequence.getTimebase() gives them
const TIMEBASE = { "23.976": 10594584000n, "25": 10160640000n, "29.97": 8475667200n };

function frames(count, rate) {
  return BigInt(count) * TIMEBASE[rate];
}

/** A 16-bit mono WAV of `samples` samples at `rate` Hz in a fresh temporary folder. */
function writeWav(samples, rate = 16000, name = "take.wav") {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "foley-premiere-"));
  const data = Buffer.alloc(samples * 2);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + data.length, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(data.length, 40);
  const file = path.join(folder, name);
  fs.writeFileSync(file, Buffer.concat([header, data]));
  return file;
}

/** A fake Premiere with one sequence; returns {world, ppro}. */
function premiere(options) {
  const world = makeWorld(options);
  return { world, ppro: makePremiere(world) };
}

/** Where the clips of a world's tracks are, as "name start-end" (ticks). */
function layout(world, kind) {
  return world.state[`${kind}Tracks`].map((t) => [...t.clips].sort((a, b) => (a.start < b.start ? -1 : 1))
    .map((c) => `${c.name} ${c.start}-${c.end}`));
}

module.exports = { TIMEBASE, frames, writeWav, premiere, layout };
