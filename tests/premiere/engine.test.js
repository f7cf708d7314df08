"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const engine = require("../../editor_plugin/premiere_uxp/lib/engine.js");
const { PanelModel, foleyFolder } = require("../../editor_plugin/premiere_uxp/lib/panel_model.js");

test("the discovery file is where `foley serve` writes it on macOS and Windows", () => {
  assert.equal(engine.defaultDiscoveryPath("darwin", "/Users/ed"),
    "/Users/ed/Library/Application Support/foley-desk/run/engine.json");
  assert.equal(engine.defaultDiscoveryPath("win32", "C:\\Users\\ed"),
    "C:\\Users\\ed\\AppData\\Local\\foley-desk\\run\\engine.json");
  assert.equal(engine.defaultDiscoveryPath("linux", "/home/ed"), null);
});

test("only an engine on this machine is accepted, and a bad discovery file says what to do", async () => {
  assert.equal(engine.checkUrl("http://127.0.0.1:8765/"), "http://127.0.0.1:8765");
  assert.throws(() => engine.checkUrl("http://10.0.0.5:8765"), /on another machine; .*Run `foley serve` here/);
  assert.throws(() => engine.checkUrl("127.0.0.1:8765"), /not an engine address/);
  const io = { readText: async (path) => { if (path === "/run/other.json") return "{\"format\": \"x\"}"; throw new Error("ENOENT"); } };
  await assert.rejects(engine.readDiscovery(io, "/run/engine.json"), /No Foley Desk engine is announced in \/run\/engine.json/);
  await assert.rejects(engine.readDiscovery(io, "/run/other.json"), /not a Foley Desk engine's discovery file/);
  await assert.rejects(engine.connect({ url: "http://127.0.0.1:1" }, io, fetch), /Enter the engine's token/);
});

test("server-sent events are parsed across chunk boundaries", () => {
  const stream = 'id: 0\nevent: state\ndata: {"seq": 0, "event": "state", "state": "running"}\n\nid: 1\nevent: pro';
  const first = engine.parseEvents(stream);
  assert.deepEqual(first.events, [{ seq: 0, event: "state", state: "running" }]);
  const second = engine.parseEvents(`${first.rest}gress\ndata: {"seq": 1, "event": "progress"}\n\n: keep-alive\n\n`);
  assert.deepEqual(second.events, [{ seq: 1, event: "progress" }]);
  assert.equal(second.rest, "");
  assert.equal(engine.progressText({ stage: "sample", step: 3, total: 25, window: 0, windows: 2, eta: 75.6 }),
    "window 1/2 · sample 3/25 · ETA 1:16");
});

test("the job is the JSON EngineClient.submit_edit sends: spans, range, seeds, the model's preset, prompts for text models", () => {
  const model = new PanelModel({ ppro: null, io: null, fetch: null, platform: "darwin", home: "/Users/ed" });
  model.models = [{ name: "tiny", default: true, takes_text: false }, { name: "mmaudio-tiny", takes_text: true }];
  const edit = [{ media: "/f/a.mov", record_start: "0", record_end: "2", source_start: "6/5" }];
  model.selection = { sequenceName: "Scene 1" };
  Object.assign(model.settings, { variants: "2", seed: "7", prompt: "gravel steps", negativePrompt: "music" });
  const request = { label: "a", start: "0", end: "2", edit };
  assert.deepEqual(model.jobPayload(request), { edit, start: "0", end: "2", level: "normalised", source: "Scene 1: a",
    model: "tiny", preset: "fast", seeds: [7, 8] });
  Object.assign(model.settings, { model: "mmaudio-tiny", steps: "3" });
  assert.deepEqual(model.jobPayload(request), { edit, start: "0", end: "2", level: "normalised", source: "Scene 1: a",
    model: "mmaudio-tiny", preset: "fast", seeds: [7, 8], steps: 3, prompt: "gravel steps", negative_prompt: "music" });
  model.settings.variants = "17";
  assert.throws(() => model.jobPayload(request), /Variants must be 1 to 16/);
  model.settings.model = "vta-ldm";
  assert.throws(() => model.jobPayload(request), /no model 'vta-ldm' \(it offers: tiny, mmaudio-tiny\)/);
});

test("variants go to 'Foley Desk' beside the saved project", () => {
  assert.equal(foleyFolder("/Users/ed/cuts/film.prproj"), "/Users/ed/cuts/Foley Desk");
  assert.equal(foleyFolder("C:\\cuts\\film.prproj"), "C:\\cuts\\Foley Desk");
  assert.throws(() => foleyFolder(""), /Save the Premiere project first/);
});
