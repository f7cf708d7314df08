"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const { placeWav } = require("../../editor_plugin/premiere_uxp/lib/place.js");
const { wavTicks } = require("../../editor_plugin/premiere_uxp/lib/wav.js");
const { frames, premiere, writeWav, layout, TIMEBASE } = require("./helpers.js");

const f = (n) => frames(n, "29.97");
const SEQUENCE = { name: "Scene 1", timebase: String(TIMEBASE["29.97"]), displayType: 102 };
const SHOT = { id: "shot", name: "shot.mov", path: "/footage/shot.mov" };
const START = f(1801); // 60.093... s, not a whole second
const WAV_SAMPLES = 32032; // 2.002 s at 16 kHz: 60 frames of 29.97

function sequenceWith(audioTracks) {
  return premiere({ media: [SHOT], sequence: SEQUENCE, audioTracks,
    videoTracks: [{ clips: [{ name: "shot", start: f(0), end: f(9000), inPoint: f(0), media: "shot" },
      { name: "late", start: f(9000), end: f(9100), inPoint: f(0), media: "shot" }] }] });
}

async function place(fake, wav, name = "take.wav") {
  const project = await fake.ppro.Project.getActiveProject();
  return placeWav(fake.ppro, { project, sequence: await project.getActiveSequence(), wavPath: wav, name,
    startTicks: START, lengthTicks: fs.existsSync(wav) ? wavTicks(fs.readFileSync(wav)) : f(60) });
}

test("the WAV goes on the lowest audio track free over its range, at the exact tick, in one undo step", async () => {
  const wav = writeWav(WAV_SAMPLES);
  const fake = sequenceWith([
    { clips: [{ name: "dialogue", start: f(1700), end: f(1810), inPoint: f(0), media: "shot" }] }, // overlaps the start
    { muted: true, clips: [] }, // free, but it would not be heard
    { clips: [{ name: "music", start: f(0), end: f(1801), inPoint: f(0), media: "shot" },
      { name: "sting", start: f(1861), end: f(1900), inPoint: f(0), media: "shot" }] }, // free exactly over 1801-1861
    { clips: [] },
  ]);
  const before = { video: layout(fake.world, "video"), audio: layout(fake.world, "audio") };
  assert.deepEqual(await place(fake, wav), { track: "A3", isNew: false });

  const length = 32032n * 254016000000n / 16000n;
  assert.equal(length, f(60)); // 2.002 s is exactly 60 frames of 29.97
  assert.deepEqual(fake.world.calls, [["createOverwriteItemAction", String(START), 0, 2]]);
  const audio = layout(fake.world, "audio");
  assert.deepEqual(audio[2], [`music 0-${f(1801)}`, `take.wav ${START}-${START + length}`, `sting ${f(1861)}-${f(1900)}`]);
  assert.deepEqual([audio[0], audio[1], audio[3]], [before.audio[0], before.audio[1], before.audio[3]]);
  assert.deepEqual(layout(fake.world, "video"), before.video);

  const { items, root } = fake.world.state;
  const bins = items[root].children.map((id) => items[id]).filter((i) => i.kind === "bin");
  assert.deepEqual(bins.map((b) => [b.name, b.children.map((id) => items[id].path)]), [["Foley", [wav]]]);
  assert.deepEqual(fake.world.undo.map((u) => u.label), ["Foley Desk: make the Foley bin", "Foley Desk: place take.wav"]);
  fake.world.undoLast(); // Edit > Undo takes the clip off and leaves the rest as it was
  assert.deepEqual(layout(fake.world, "audio"), before.audio);
});

test("with no free track the WAV gets a new one, by an insert that moves nothing else", async () => {
  const wav = writeWav(WAV_SAMPLES);
  const busy = { clips: [{ name: "room tone", start: f(0), end: f(9000), inPoint: f(0), media: "shot" }] };
  const fake = sequenceWith([busy, busy]);
  const before = { video: layout(fake.world, "video"), audio: layout(fake.world, "audio") };
  assert.deepEqual(await place(fake, wav), { track: "A3", isNew: true });
  assert.deepEqual(fake.world.calls, [["createInsertProjectItemAction", String(START), 0, 2, true]]);
  assert.deepEqual(layout(fake.world, "video"), before.video); // the clip after the start did not move
  assert.deepEqual(layout(fake.world, "audio"), [...before.audio, [`take.wav ${START}-${START + f(60)}`]]);
});

test("a second variant stacks on the next free track and the Foley bin is reused", async () => {
  const fake = sequenceWith([{ clips: [] }, { clips: [] }]);
  await place(fake, writeWav(WAV_SAMPLES, 16000, "v1.wav"), "v1.wav");
  assert.deepEqual(await place(fake, writeWav(WAV_SAMPLES, 16000, "v2.wav"), "v2.wav"), { track: "A2", isNew: false });
  const { items, root } = fake.world.state;
  const bins = items[root].children.filter((id) => items[id].kind === "bin");
  assert.equal(bins.length, 1);
  assert.equal(items[bins[0]].children.length, 2);
});

test("a locked track or a missing file is refused with nothing changed", async () => {
  const locked = sequenceWith([{ locked: true, clips: [] }]);
  const before = layout(locked.world, "audio");
  await assert.rejects(place(locked, writeWav(WAV_SAMPLES)), /Premiere refused to place take.wav on audio track A1; unlock/);
  assert.deepEqual(layout(locked.world, "audio"), before);
  await assert.rejects(place(sequenceWith([{ clips: [] }]), "/nowhere/take.wav"),
    /Premiere could not import \/nowhere\/take.wav; check the file exists/);
});

test("the fake holds Premiere's rules: actions only inside lockedAccess, no async transaction callbacks", async () => {
  const { ppro } = sequenceWith([{ clips: [] }]);
  const project = await ppro.Project.getActiveProject();
  const root = await project.getRootItem();
  assert.throws(() => root.createBinAction("Foley", false), /inside Project.lockedAccess/);
  assert.throws(() => project.lockedAccess(async () => {}), /must not be async/);
  let kept;
  project.executeTransaction((compound) => { kept = compound; }, "nothing");
  assert.throws(() => kept.addAction({ _apply() {} }), /only inside Project.executeTransaction/);
  assert.throws(() => ppro.TickTime.createWithTicks(12), /ticks as a string/);
});
