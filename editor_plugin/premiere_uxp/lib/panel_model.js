"use strict";
/**
 * What the Premiere panel knows and does, without the DOM: the engine connection and its models, the selection's
 * requests, one take (a job and its variants) per request, and the actions (connect, read the selection,
 * generate, cancel, play, place). The panel (index.js) shows `model` and calls these; node tests drive them.
 */

const { PanelError } = require("./errors.js");
const { connect, defaultDiscoveryPath, progressText } = require("./engine.js");
const { placeWav } = require("./place.js");
const { activeSequence, readSelection } = require("./selection.js");
const { wavTicks } = require("./wav.js");

const FOLDER = "Foley Desk";

/** `Foley Desk` beside the project file, in the project path's own separator. */
function foleyFolder(projectPath) {
  if (!projectPath) throw new PanelError("Save the Premiere project first: the foley goes in 'Foley Desk' beside it.");
  const sep = projectPath.includes("\\") && !projectPath.includes("/") ? "\\" : "/";
  return projectPath.slice(0, projectPath.lastIndexOf(sep)) + sep + FOLDER;
}

class PanelModel {
  constructor({ ppro, io, fetch, platform, home }) {
    Object.assign(this, { ppro, io, fetch });
    this.settings = { discoveryPath: defaultDiscoveryPath(platform, home) || "", url: "", token: "", model: "",
      quality: "fast", variants: 2, seed: 1, steps: 0, prompt: "", negativePrompt: "" };
    this.engine = null;
    this.models = [];
    this.selection = null;
    this.takes = []; // per request: {request, job, state, progress, variants: [{number, seed, sync_score, path, lengthTicks}]}
    this.busy = false;
    this.stopping = false;
    this.message = "";
    this.listeners = [];
  }

  onChange(listener) { this.listeners.push(listener); }

  changed() { for (const listener of this.listeners) listener(this); }

  say(message) {
    this.message = message;
    this.changed();
  }

  /** Run `action`; a problem the user can fix becomes the panel's message (anything else propagates). */
  async run(action) {
    try {
      return await action();
    } catch (error) {
      if (!(error instanceof PanelError)) throw error;
      this.say(error.message);
      return null;
    }
  }

  async connect() {
    this.engine = await connect(this.settings, this.io, this.fetch);
    this.models = await this.engine.models();
    this.say(`Connected to the engine at ${this.engine.url}; models: ${this.models.map((m) => m.name).join(", ")}.`);
  }

  async readSelection() {
    this.selection = await readSelection(this.ppro);
    this.takes = this.selection.requests.map((request) => ({ request, job: null, state: "ready", progress: "", variants: [] }));
    const ranges = this.selection.requests.map((r) => `${r.label} ${r.inTimecode}-${r.outTimecode}`);
    this.say(`${this.selection.sequenceName}: ${ranges.join("; ")}.`);
  }

  modelEntry() {
    const wanted = this.settings.model;
    const entry = wanted ? this.models.find((m) => m.name === wanted) : this.models.find((m) => m.default);
    if (!entry) {
      throw new PanelError(`The engine has no model '${wanted}' (it offers: ${this.models.map((m) => m.name).join(", ")}).`);
    }
    return entry;
  }

  /** The job the engine gets for `request`: the JSON `EngineClient.submit_edit` sends. */
  jobPayload(request) {
    const { settings } = this;
    const entry = this.modelEntry();
    const variants = Number(settings.variants);
    if (!Number.isInteger(variants) || variants < 1 || variants > 16) throw new PanelError("Variants must be 1 to 16.");
    const payload = { edit: request.edit, start: request.start, end: request.end, level: "normalised",
      source: `${this.selection.sequenceName}: ${request.label}`, model: entry.name, preset: settings.quality,
      seeds: Array.from({ length: variants }, (_, i) => Number(settings.seed) + i) };
    if (Number(settings.steps)) payload.steps = Number(settings.steps);
    if (entry.takes_text && (settings.prompt || settings.negativePrompt)) {
      Object.assign(payload, { prompt: settings.prompt, negative_prompt: settings.negativePrompt });
    }
    return payload;
  }

  /** Generate every request's take in turn: submit, follow its progress, fetch its variants. */
  async generate() {
    if (!this.engine) throw new PanelError("Connect to the engine first.");
    if (!this.selection) throw new PanelError("Read the selection first.");
    this.busy = true;
    this.stopping = false;
    try {
      for (const take of this.takes) {
        if (this.stopping) break;
        await this.generateTake(take);
      }
    } finally {
      this.busy = false;
      this.changed();
    }
  }

  async generateTake(take) {
    take.job = await this.engine.submit(this.jobPayload(take.request));
    take.state = take.job.state;
    this.changed();
    const record = await this.engine.follow(take.job.id, (event) => {
      if (event.event === "progress") take.progress = progressText(event);
      else take.state = event.event === "state" ? event.state : event.event;
      this.changed();
    });
    take.state = record.state;
    if (record.state === "failed") throw new PanelError(`The engine could not make '${take.request.label}': ${record.error}`);
    if (record.state === "done") {
      take.variants = await this.download(record);
      this.say(`${take.request.label}: ${take.variants.length} variant(s) in ${foleyFolder(this.selection.projectPath)}.`);
    }
  }

  /** Every variant's WAV and sidecar into the Foley Desk folder (written under a temporary name, then renamed). */
  async download(record) {
    const folder = foleyFolder(this.selection.projectPath);
    const sep = folder.includes("\\") && !folder.includes("/") ? "\\" : "/";
    await this.io.mkdir(folder);
    const variants = [];
    for (const item of record.variants) {
      const files = {};
      for (const kind of ["wav", "json"]) {
        const bytes = await this.engine.variant(record.id, item.number, kind);
        const [part, path] = [`${folder}${sep}.${item[kind]}.part`, `${folder}${sep}${item[kind]}`];
        await this.io.writeBytes(part, bytes);
        await this.io.rename(part, path);
        files[kind] = { bytes, path };
      }
      variants.push({ number: item.number, seed: item.seed, sync_score: item.sync_score, path: files.wav.path,
        lengthTicks: wavTicks(files.wav.bytes) });
    }
    return variants;
  }

  async cancel() {
    this.stopping = true;
    const running = this.takes.filter((t) => t.job && !["done", "failed", "cancelled"].includes(t.state));
    for (const take of running) await this.engine.cancel(take.job.id);
    this.say(running.length ? "Cancelling: the engine keeps nothing of a cancelled job." : "Nothing is running.");
  }

  variant(takeIndex, number) {
    const take = this.takes[takeIndex];
    const found = take && take.variants.find((v) => v.number === number);
    if (!found) throw new PanelError("Generate the selection first, then choose one of its variants.");
    return { take, found };
  }

  /** Audition a variant in Premiere's Source Monitor (UXP panels have no audio element). */
  async play(takeIndex, number) {
    const { found } = this.variant(takeIndex, number);
    if (!(await this.ppro.SourceMonitor.openFilePath(found.path))) {
      throw new PanelError(`Premiere could not open ${found.path} in the Source Monitor; check the file exists.`);
    }
    await this.ppro.SourceMonitor.play(1.0);
    this.say(`Playing variant ${number} (seed ${found.seed}) in the Source Monitor.`);
  }

  /** Put a variant on the sequence at its request's record start (one undo step). */
  async place(takeIndex, number) {
    const { take, found } = this.variant(takeIndex, number);
    const { project, sequence } = await activeSequence(this.ppro);
    if (sequence.name !== this.selection.sequenceName) {
      throw new PanelError(`The variant was made for the sequence '${this.selection.sequenceName}'; make it the ` +
        "active sequence, then place it.");
    }
    const name = found.path.slice(Math.max(found.path.lastIndexOf("/"), found.path.lastIndexOf("\\")) + 1);
    const placed = await placeWav(this.ppro, { project, sequence, wavPath: found.path, name,
      startTicks: take.request.startTicks, lengthTicks: found.lengthTicks });
    this.say(`Placed ${name} on ${placed.track}${placed.isNew ? " (a new track)" : ""} at ` +
      `${take.request.inTimecode}; Edit > Undo takes it off.`);
    return placed;
  }
}

module.exports = { PanelModel, foleyFolder };
