"use strict";
/**
 * Drive the Premiere panel's logic (PanelModel, as index.js does) against a real engine, with the fake
 * `premierepro` standing in for Premiere: a 25 fps sequence whose selected clip shows `video` from 0.4 s over
 * record 1-3 s. Phase 1 finds the engine through its discovery file, generates two variants, plays one and
 * places it; phase 2 connects by URL and token and cancels a long job. Prints a JSON report.
 *
 *   node e2e_drive.js '{"video": PATH, "project": PATH.prproj, "discovery": PATH, "url": URL, "token": TOKEN}'
 */

const fsp = require("node:fs/promises");
const { PanelModel } = require("../../editor_plugin/premiere_uxp/lib/panel_model.js");
const { makePremiere, makeWorld } = require("./fake_premierepro.js");
const { frames, TIMEBASE, layout } = require("./helpers.js");

const args = JSON.parse(process.argv[2]);
const f = (n) => frames(n, "25");
const io = {
  readText: (path) => fsp.readFile(path, "utf8"),
  writeBytes: (path, bytes) => fsp.writeFile(path, Buffer.from(bytes)),
  rename: (from, to) => fsp.rename(from, to),
  mkdir: (path) => fsp.mkdir(path, { recursive: true }),
};

function premiere() {
  const world = makeWorld({
    projectPath: args.project,
    media: [{ id: "ball", name: "ball.mp4", path: args.video }],
    sequence: { name: "Bounce", timebase: String(TIMEBASE["25"]), displayType: 101 },
    videoTracks: [{ clips: [{ name: "ball", start: f(25), end: f(75), inPoint: f(10), media: "ball", selected: true }] }],
    audioTracks: [{ clips: [{ name: "dialogue", start: f(0), end: f(100), inPoint: f(0), media: "ball" }] }, { clips: [] }],
  });
  return { world, ppro: makePremiere(world) };
}

function panel(ppro, settings) {
  const model = new PanelModel({ ppro, io, fetch, platform: "linux", home: "/nowhere" });
  Object.assign(model.settings, settings);
  return model;
}

async function generateAndPlace() {
  const { world, ppro } = premiere();
  const model = panel(ppro, { discoveryPath: args.discovery, variants: 2, seed: 3, steps: 1 });
  const seen = new Set();
  model.onChange(() => { for (const take of model.takes) seen.add(`${take.state}|${take.progress}`); });
  for (const step of ["connect", "readSelection", "generate"]) await model[step]();
  const [take] = model.takes;
  await model.play(0, 2);
  const placed = await model.place(0, 1);
  const track = world.state.audioTracks[1].clips.map((c) => ({ name: c.name, start: String(c.start), end: String(c.end) }));
  return { url: model.engine.url, request: { ...take.request, startTicks: String(take.request.startTicks),
    endTicks: String(take.request.endTicks) }, state: take.state, seen: [...seen], variants: take.variants.map((v) =>
    ({ ...v, lengthTicks: String(v.lengthTicks) })), sourceMonitor: world.sourceMonitor, placed, track,
  dialogue: layout(world, "audio")[0], undo: world.undo.map((u) => u.label), message: model.message };
}

async function cancelLongJob() {
  const { ppro } = premiere();
  const model = panel(ppro, { discoveryPath: "", url: args.url, token: args.token, variants: 1, steps: 900 });
  await model.connect();
  await model.readSelection();
  let asked = false;
  model.onChange(() => {
    const [take] = model.takes;
    if (!asked && / sample [2-9]/.test(` ${take.progress}`)) {
      asked = true;
      model.cancel();
    }
  });
  await model.generate();
  return { state: model.takes[0].state, variants: model.takes[0].variants.length, progress: model.takes[0].progress };
}

(async () => {
  const report = { first: await generateAndPlace(), cancel: await cancelLongJob() };
  process.stdout.write(JSON.stringify(report));
})().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
