"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { readSelection } = require("../../editor_plugin/premiere_uxp/lib/selection.js");
const { PanelError } = require("../../editor_plugin/premiere_uxp/lib/errors.js");
const { frames, premiere, TIMEBASE } = require("./helpers.js");

const SHOT = { id: "shot", name: "shot.mov", path: "/footage/shot.mov" };
const INSERT = { id: "insert", name: "insert.mov", path: "/footage/insert.mov" };

function sequenceAt(rate, displayType, more = {}) {
  return { name: "Scene 1", timebase: String(TIMEBASE[rate]), displayType, ...more };
}

test("23.976: a selected clip with a cutaway over it on V2, exact to the tick, timecode from 01:00:00:00", async () => {
  const f = (n) => frames(n, "23.976");
  const { ppro } = premiere({
    media: [SHOT, INSERT],
    sequence: sequenceAt("23.976", 110, { zeroPoint: f(86400) }),
    videoTracks: [
      { clips: [{ name: "shot", start: f(0), end: f(240), inPoint: f(100), media: "shot", selected: true }] },
      { clips: [{ name: "insert", start: f(48), end: f(96), inPoint: f(10), media: "insert" }] },
    ],
  });
  const { requests, sequenceName } = await readSelection(ppro);
  assert.equal(sequenceName, "Scene 1");
  assert.equal(requests.length, 1);
  const [request] = requests;
  assert.deepEqual([request.label, request.start, request.end], ["shot", "0", "1001/100"]); // 240 frames = 10.01 s
  assert.deepEqual([request.inTimecode, request.outTimecode], ["01:00:00:00", "01:00:10:00"]);
  assert.equal(request.startTicks, 0n);
  assert.equal(request.endTicks, 240n * 10594584000n);
  assert.deepEqual(request.edit, [
    { media: "/footage/shot.mov", record_start: "0", record_end: "1001/500", source_start: "1001/240" },
    { media: "/footage/insert.mov", record_start: "1001/500", record_end: "1001/250", source_start: "1001/2400" },
    // back on the shot 96 frames in: its in-point (100 frames) plus 96 = 196 frames = 196196/24000 s
    { media: "/footage/shot.mov", record_start: "1001/250", record_end: "1001/100", source_start: "49049/6000" },
  ]);
});

test("29.97 drop-frame: the sequence In/Out, with disabled clips, adjustment layers and hidden tracks ignored", async () => {
  const f = (n) => frames(n, "29.97");
  const clips = [{ name: "shot", start: f(0), end: f(3000), inPoint: f(0), media: "shot" }];
  const cover = [{ name: "insert", start: f(0), end: f(3000), inPoint: f(0), media: "insert" }];
  const world = {
    media: [SHOT, INSERT],
    sequence: sequenceAt("29.97", 102, { inPoint: f(1800), outPoint: f(1860) }),
    videoTracks: [{ clips }, { clips: [{ ...cover[0], disabled: true }] }, { clips: [{ ...cover[0], adjustment: true }] },
      { muted: true, clips: cover }],
  };
  const { requests } = await readSelection(premiere(world).ppro);
  assert.deepEqual(requests.map((r) => [r.label, r.start, r.end, r.inTimecode, r.outTimecode]),
    [["In/Out", "3003/50", "31031/500", "00:01:00;02", "00:01:02;02"]]);
  assert.deepEqual(requests[0].edit,
    [{ media: "/footage/shot.mov", record_start: "3003/50", record_end: "31031/500", source_start: "3003/50" }]);
  // the same sequence showing non-drop timecode
  world.sequence = { ...world.sequence, displayType: 103 };
  const [plain] = (await readSelection(premiere(world).ppro)).requests;
  assert.deepEqual([plain.inTimecode, plain.outTimecode], ["00:01:00:00", "00:01:02:00"]);
});

test("25: each selected video clip is its own request, from its trimmed in-point", async () => {
  const f = (n) => frames(n, "25");
  const { ppro } = premiere({
    media: [SHOT, INSERT],
    sequence: sequenceAt("25", 101),
    videoTracks: [{ clips: [
      { name: "a", start: f(50), end: f(100), inPoint: f(30), media: "shot", selected: true },
      { name: "b", start: f(100), end: f(130), inPoint: f(0), media: "insert" },
      { name: "c", start: f(130), end: f(155), inPoint: f(7), media: "insert", selected: true },
    ] }],
    audioTracks: [{ clips: [{ name: "dialogue", start: f(0), end: f(500), inPoint: f(0), media: "shot", selected: true }] }],
  });
  const { requests } = await readSelection(ppro);
  assert.deepEqual(requests.map((r) => [r.label, r.start, r.end, r.inTimecode, r.outTimecode, r.edit]), [
    ["a", "2", "4", "00:00:02:00", "00:00:04:00", [{ media: "/footage/shot.mov", record_start: "2", record_end: "4", source_start: "6/5" }]],
    ["c", "26/5", "31/5", "00:00:05:05", "00:00:06:05", [{ media: "/footage/insert.mov", record_start: "26/5", record_end: "31/5", source_start: "7/25" }]],
  ]);
});

async function refusal(clip, media = [SHOT]) {
  const f = (n) => frames(n, "25");
  const { ppro } = premiere({ media, sequence: sequenceAt("25", 101),
    videoTracks: [{ clips: [{ name: "shot", start: f(0), end: f(50), inPoint: f(0), media: "shot", selected: true, ...clip }] }] });
  await assert.rejects(readSelection(ppro), PanelError);
  return readSelection(ppro).catch((error) => error.message);
}

test("clips whose media plays at another speed, reversed or remapped are refused, as the other bridges do", async () => {
  assert.match(await refusal({ speed: 2 }), /Clip 'shot' plays at 200 % speed; the generated sound would drift/);
  assert.match(await refusal({ speed: 0.5 }), /plays at 50 % speed/);
  assert.match(await refusal({ reversed: true }), /Clip 'shot' plays in reverse; .*drift/);
  // time remapping keeps speed 100 % but shows 100 frames of source over 50 of record
  assert.match(await refusal({ outPoint: frames(100, "25") }), /Clip 'shot' has time remapping; .*drift/);
});

test("nested sequences, clips without media and offline media are refused with what to do", async () => {
  assert.match(await refusal({}, [{ ...SHOT, sequence: true }]), /nested sequence; .*open the nested sequence/);
  assert.match(await refusal({}, [{ ...SHOT, path: "" }]), /has no media file \(a title, graphic or matte\)/);
  assert.match(await refusal({}, [{ ...SHOT, offline: true }]), /is offline \(\/footage\/shot.mov\)\. Relink/);
});

test("with nothing selected and no In/Out, or only a gap, the panel says what to select", async () => {
  const f = (n) => frames(n, "25");
  const empty = premiere({ media: [SHOT], sequence: sequenceAt("25", 101),
    videoTracks: [{ clips: [{ name: "shot", start: f(100), end: f(150), inPoint: f(0), media: "shot" }] }] });
  await assert.rejects(readSelection(empty.ppro), /Select video clips in the timeline, or mark an In and an Out point/);
  const gap = premiere({ media: [SHOT], sequence: sequenceAt("25", 101, { inPoint: f(0), outPoint: f(50) }),
    videoTracks: [{ clips: [{ name: "shot", start: f(100), end: f(150), inPoint: f(0), media: "shot" }] }] });
  await assert.rejects(readSelection(gap.ppro), /No video clip shows in 'In\/Out' \(00:00:00:00 to 00:00:02:00\)/);
  const closed = premiere({ projectPath: null, sequence: null });
  await assert.rejects(readSelection(closed.ppro), /No Premiere project is open/);
});
