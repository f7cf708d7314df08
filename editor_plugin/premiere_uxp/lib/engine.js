"use strict";
/**
 * The Foley Desk engine from the panel: found through its discovery file (engine/serving/client.py writes it:
 * {"format": "FoleyEngine.1", "url", "token", ...}) or a URL and token the user enters; jobs sent as edit spans
 * (the JSON `EngineClient.submit_edit` sends), followed over the job's Server-Sent Events, cancelled, and their
 * variants fetched. Only an engine on this machine is accepted: it reads the media files the spans name.
 *
 * UXP facts relied on (UXP API reference in AdobeDocs/uxp-premiere-pro @ d7ca9c8): fetch is global and its body
 * can be read as a stream, but UXP has no TextDecoder (the engine's events are JSON with ASCII escapes, so bytes
 * are characters); network access needs the manifest's requiredPermissions.network.domains.
 */

const { PanelError } = require("./errors.js");

const API = "/v1";
const DISCOVERY_FORMAT = "FoleyEngine.1";
const FINAL_STATES = ["done", "failed", "cancelled"];
const LOOPBACK = ["127.0.0.1", "localhost", "[::1]"];

/** Where `foley serve` announces itself by default (runtime_dir() in engine/serving/client.py). */
function defaultDiscoveryPath(platform, home) {
  if (platform === "darwin") return `${home}/Library/Application Support/foley-desk/run/engine.json`;
  if (String(platform).startsWith("win")) return `${home}\\AppData\\Local\\foley-desk\\run\\engine.json`;
  return null; // Linux: $XDG_RUNTIME_DIR/foley-desk/engine.json, which UXP cannot read from the environment
}

function checkUrl(url) {
  const match = /^http:\/\/([^/:]+|\[::1\]):(\d+)\/?$/.exec(String(url).trim());
  if (!match) throw new PanelError(`'${url}' is not an engine address; it looks like http://127.0.0.1:PORT.`);
  if (!LOOPBACK.includes(match[1])) {
    throw new PanelError(`The engine at ${url} is on another machine; Premiere sends the engine paths of media on ` +
      "this one. Run `foley serve` here and connect to it (127.0.0.1).");
  }
  return String(url).trim().replace(/\/$/, "");
}

async function readDiscovery(io, path) {
  let data;
  try {
    data = JSON.parse(await io.readText(path));
  } catch (error) {
    throw new PanelError(`No Foley Desk engine is announced in ${path} (${error.message}). Start one with ` +
      "`foley serve`, or enter its URL and token.");
  }
  if (!data || data.format !== DISCOVERY_FORMAT || !data.url || !data.token) {
    throw new PanelError(`${path} is not a Foley Desk engine's discovery file; start the engine with \`foley serve\`.`);
  }
  return { url: data.url, token: data.token };
}

function ascii(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return text;
}

/** Complete Server-Sent Events in `text` (their JSON data) and the unfinished rest. */
function parseEvents(text) {
  const blocks = text.replace(/\r\n/g, "\n").split("\n\n");
  const rest = blocks.pop();
  const events = [];
  for (const block of blocks) {
    const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim());
    if (data.length) events.push(JSON.parse(data.join("\n")));
  }
  return { events, rest };
}

class Engine {
  constructor(url, token, fetchFn) {
    this.url = checkUrl(url);
    this.token = token;
    this.fetch = fetchFn;
  }

  async request(method, path, { body, headers = {} } = {}) {
    let response;
    try {
      response = await this.fetch(this.url + API + path, { method, body,
        headers: { Authorization: `Bearer ${this.token}`, ...headers } });
    } catch (error) {
      throw new PanelError(`Cannot reach the engine at ${this.url} (${error.message}). Is \`foley serve\` running?`);
    }
    if (response.status >= 400) {
      let detail = await response.text();
      try {
        detail = JSON.parse(detail).detail;
      } catch (_) { /* not JSON: the text itself */ }
      throw new PanelError(`The engine refused the request (${response.status}): ${detail}`);
    }
    return response;
  }

  async json(method, path, payload) {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const headers = body === undefined ? {} : { "Content-Type": "application/json" };
    return (await this.request(method, path, { body, headers })).json();
  }

  health() { return this.json("GET", "/health"); }

  async models() { return (await this.json("GET", "/models")).models; }

  submit(payload) { return this.json("POST", "/jobs", payload); }

  job(id) { return this.json("GET", `/jobs/${id}`); }

  cancel(id) { return this.json("POST", `/jobs/${id}/cancel`); }

  async variant(id, number, kind) {
    return (await this.request("GET", `/jobs/${id}/variants/${number}.${kind}`)).arrayBuffer();
  }

  /** The job's events after `after`, read as they come (all at once where the body cannot be streamed). */
  async *events(id, after) {
    const headers = after === null ? {} : { "Last-Event-ID": String(after) };
    const response = await this.request("GET", `/jobs/${id}/events`, { headers });
    if (!response.body || !response.body.getReader) {
      yield* parseEvents(`${await response.text()}\n\n`).events;
      return;
    }
    const reader = response.body.getReader();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      const parsed = parseEvents(buffer + ascii(value));
      buffer = parsed.rest;
      yield* parsed.events;
    }
  }

  /** Follow a job to its end, calling `onEvent` per event; returns its final record (done, failed or cancelled). */
  async follow(id, onEvent) {
    let last = null;
    for (;;) {
      for await (const event of this.events(id, last)) {
        last = event.seq;
        onEvent(event);
        if (FINAL_STATES.includes(event.event)) return this.job(id);
      }
      const record = await this.job(id); // the stream dropped: resume unless the job has ended meanwhile
      if (FINAL_STATES.includes(record.state)) return record;
    }
  }
}

/** An engine from the user's URL and token, else from the discovery file; checked to answer. */
async function connect({ url, token, discoveryPath }, io, fetchFn) {
  let found = { url, token };
  if (!url) {
    if (!discoveryPath) throw new PanelError("Enter the engine's discovery file, or its URL and token.");
    found = await readDiscovery(io, discoveryPath);
  } else if (!token) {
    throw new PanelError("Enter the engine's token with its URL (`foley engine status` shows both).");
  }
  const engine = new Engine(found.url, found.token, fetchFn);
  await engine.models(); // answers, and the token is right
  return engine;
}

/** One line per progress event: window k/n, the stage's step k/n, the job's ETA. */
function progressText(event) {
  const parts = [`${event.stage} ${event.step}/${event.total}`];
  if (event.windows) parts.unshift(`window ${event.window + 1}/${event.windows}`);
  if ("eta" in event) {
    const whole = Math.round(event.eta || 0);
    parts.push(event.eta === null ? "ETA measuring" : `ETA ${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`);
  }
  return parts.join(" · ");
}

module.exports = { Engine, connect, readDiscovery, defaultDiscoveryPath, checkUrl, parseEvents, progressText,
  FINAL_STATES };
