"use strict";
/** The Premiere panel's view: shows the PanelModel and hands it the user's clicks; all logic lives in lib/. */

const ppro = require("premierepro");
const fs = require("fs");
const os = require("os");
const { PanelModel } = require("./lib/panel_model.js");

const io = {
  readText: (path) => fs.readFile(path, { encoding: "utf-8" }),
  writeBytes: (path, bytes) => fs.writeFile(path, bytes),
  rename: (from, to) => fs.rename(from, to),
  mkdir: async (path) => {
    try {
      await fs.lstat(path);
    } catch (_) {
      await fs.mkdir(path, { recursive: true });
    }
  },
};

const model = new PanelModel({ ppro, io, fetch, platform: os.platform(), home: os.homedir() });
const $ = (id) => document.getElementById(id);
const FIELDS = { discovery: "discoveryPath", url: "url", token: "token", model: "model", quality: "quality",
  variants: "variants", seed: "seed", prompt: "prompt", negative: "negativePrompt" };

function readFields() {
  for (const [id, key] of Object.entries(FIELDS)) model.settings[key] = $(id).value.trim();
}

function variantRow(takeIndex, variant) {
  const row = document.createElement("div");
  row.className = "variant";
  const text = document.createElement("span");
  text.textContent = `v${variant.number} seed ${variant.seed} · sync ${Number(variant.sync_score).toFixed(2)}`;
  row.appendChild(text);
  for (const [label, action] of [["Play", "play"], ["Place", "place"]]) {
    const button = document.createElement("button");
    button.textContent = label;
    button.addEventListener("click", () => act(() => model[action](takeIndex, variant.number)));
    row.appendChild(button);
  }
  return row;
}

function render() {
  $("message").textContent = model.message;
  const models = $("model");
  if (models.options.length !== model.models.length) {
    models.innerHTML = "";
    for (const entry of model.models) {
      const option = document.createElement("option");
      option.value = entry.name;
      option.textContent = entry.name + (entry.takes_text ? " (takes text)" : "");
      option.selected = entry.default;
      models.appendChild(option);
    }
  }
  $("generate").disabled = model.busy;
  const takes = $("takes");
  takes.innerHTML = "";
  model.takes.forEach((take, index) => {
    const block = document.createElement("div");
    block.className = "take";
    block.textContent = `${take.request.label} ${take.request.inTimecode}–${take.request.outTimecode}: ${take.state}` +
      (take.progress && take.state === "running" ? ` · ${take.progress}` : "");
    for (const variant of take.variants) block.appendChild(variantRow(index, variant));
    takes.appendChild(block);
  });
}

function act(action) {
  readFields();
  model.run(action).catch((error) => model.say(`Unexpected error: ${error.message}`));
}

model.onChange(render);
$("discovery").value = model.settings.discoveryPath;
$("connect").addEventListener("click", () => act(() => model.connect()));
$("read").addEventListener("click", () => act(() => model.readSelection()));
$("generate").addEventListener("click", () => act(() => model.generate()));
$("cancel").addEventListener("click", () => act(() => model.cancel()));
render();
