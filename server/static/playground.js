// whetstone playground: two request configurations side by side, candidates shown live.
// Plain browser JavaScript, no build step, no outside resources.
"use strict";

const CHAT_URL = "/v1/chat/completions";
const KEY_STORE = "whetstone.playground.apiKey"; // sessionStorage: gone when the tab closes
const HISTORY_STORE = "whetstone.playground.history"; // localStorage
const HISTORY_LIMIT = 20;
// A side leaves a field out of its request when the form leaves it blank (the server's default
// applies); "server default" as the strategy sends none. So A is greedy decoding and B is a plain
// OpenAI request: no temperature, no strategy, no n, what the server ships.
const SERVER_DEFAULT = "default";
const DEFAULTS = {
  A: { strategy: "none", temperature: 0, max_tokens: 128 },
  B: { strategy: SERVER_DEFAULT, max_tokens: 128 },
};
const NUMBER_FIELDS = ["n", "length_penalty", "threshold", "alpha", "seed"];

const $ = (selector, root = document) => root.querySelector(selector);

function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (apiKey()) h.Authorization = `Bearer ${apiKey()}`;
  return h;
}

function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

function fmt(value, digits = 2) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

// ---- one side: its form, its request, its live race -------------------------------------

class Side {
  constructor(root) {
    this.root = root;
    this.name = root.dataset.side;
    root.append($("#side-template").content.cloneNode(true));
    $(".side-name", root).textContent = `Side ${this.name}`;
    this.form = $(".config", root);
    this.setConfig(DEFAULTS[this.name]);
    this.form.strategy.addEventListener("change", () => this.showFields());
    $(".copy-json", root).addEventListener("click", () => this.copyOut(() => JSON.stringify(this.record(), null, 2)));
    $(".copy-curl", root).addEventListener("click", () => this.copyOut(() => this.curl()));
    this.result = null;
  }

  setConfig(config) {
    const f = this.form;
    f.strategy.value = config.strategy || SERVER_DEFAULT;
    f.temperature.value = config.temperature ?? "";
    f.extra.value = config.extra ?? "";
    f.max_tokens.value = config.max_tokens ?? 128;
    f.prune.checked = config.prune ?? true;
    f.answer_pattern.value = config.answer_pattern ?? f.answer_pattern.defaultValue;
    for (const name of NUMBER_FIELDS) {
      f[name].value = config[name] ?? f[name].defaultValue;
    }
    this.showFields();
  }

  showFields() {
    const strategy = this.form.strategy.value;
    for (const label of this.form.querySelectorAll("[data-for]")) {
      label.hidden = !label.dataset.for.split(" ").includes(strategy);
    }
  }

  // The form as a flat config (only the fields the chosen strategy uses; blank fields left out).
  config() {
    const f = this.form;
    const config = { strategy: f.strategy.value, max_tokens: Number(f.max_tokens.value) };
    if (f.temperature.value !== "") config.temperature = Number(f.temperature.value);
    if (f.extra.value.trim()) config.extra = f.extra.value.trim();
    for (const label of f.querySelectorAll("[data-for]")) {
      if (label.hidden) continue;
      const input = $("input", label);
      if (input.type === "checkbox") config[input.name] = input.checked;
      else if (input.type === "text") config[input.name] = input.value;
      else if (input.value !== "") config[input.name] = Number(input.value);
    }
    if (f.seed.value !== "") config.seed = Number(f.seed.value);
    return config;
  }

  // The request: the form's fields, then the extra JSON fields over them. Candidates are always
  // returned and streamed (the page draws them); that changes nothing in what is selected.
  body(prompt) {
    const { strategy, temperature, max_tokens, extra, ...options } = this.config();
    const fields = extraFields(extra);
    const sharpening = { ...(strategy === SERVER_DEFAULT ? {} : { strategy }), ...options,
                         ...fields.sharpening, return_candidates: true, stream_candidates: true };
    return {
      max_tokens, ...(temperature === undefined ? {} : { temperature }), ...fields, sharpening,
      messages: [{ role: "user", content: prompt }], stream: true, stream_options: { include_usage: true },
    };
  }

  copyOut(text) {
    try {
      copy(text());
    } catch (error) {
      showError($(".side-error", this.root), error.message);
    }
  }

  curl() {
    const body = JSON.stringify(this.body($("#prompt").value)).replaceAll("'", "'\\''");
    const auth = apiKey() ? ` \\\n  -H 'Authorization: Bearer ${apiKey().replaceAll("'", "'\\''")}'` : "";
    return `curl -N ${location.origin}${CHAT_URL} \\\n  -H 'Content-Type: application/json'${auth} \\\n  -d '${body}'`;
  }

  record() {
    return { side: this.name, request: this.body($("#prompt").value), result: this.result };
  }

  reset() {
    this.cands = new Map();
    this.cutoff = null;
    this.result = null;
    $(".candidates", this.root).replaceChildren();
    $(".answer", this.root).textContent = "";
    $(".summary", this.root).replaceChildren();
    $(".raw-json", this.root).textContent = "";
    $(".cutoff", this.root).textContent = "S* —";
    showError($(".side-error", this.root), "");
  }

  // Send the request and follow the stream; resolves with this side's result (or null on error).
  async run(prompt) {
    this.reset();
    this.root.classList.add("running");
    const started = performance.now();
    let firstToken = null;
    let answer = "";
    let summary = null;
    let usage = null;
    try {
      const response = await fetch(CHAT_URL, { method: "POST", headers: headers(),
                                               body: JSON.stringify(this.body(prompt)) });
      if (!response.ok) throw await httpError(response);
      for await (const { event, data } of sseEvents(response)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (event === "candidate") {
          this.take(chunk);
          continue;
        }
        for (const choice of chunk.choices || []) {
          if (choice.index !== 0) continue;
          const piece = choice.delta && choice.delta.content;
          if (piece) {
            firstToken ??= performance.now() - started;
            answer += piece;
            $(".answer", this.root).textContent = answer;
          }
        }
        if (chunk.sharpening) summary = chunk.sharpening;
        if (chunk.usage) usage = chunk.usage;
      }
      if (!summary) throw new Error("the stream ended without a result");
      this.result = { answer, sharpening: summary, usage,
                      latency_ms: Math.round(performance.now() - started),
                      first_token_ms: firstToken === null ? null : Math.round(firstToken) };
      this.finish();
    } catch (error) {
      showError($(".side-error", this.root), error.message);
      if (error.status === 401) askForKey();
    } finally {
      this.root.classList.remove("running");
    }
    return this.result;
  }

  // One `event: candidate` batch: update each candidate's card.
  take(chunk) {
    this.cutoff = chunk.cutoff;
    $(".cutoff", this.root).textContent = `S* ${fmt(this.cutoff)}`;
    for (const entry of chunk.candidates) {
      const known = this.cands.get(entry.index) || { text: "" };
      const cand = { ...known, ...entry, text: known.text + (entry.text || "") };
      if (entry.status === "selected") cand.selected = true;
      this.cands.set(entry.index, cand);
      this.draw(cand);
    }
  }

  draw(cand) {
    const list = $(".candidates", this.root);
    let card = list.querySelector(`[data-index="${cand.index}"]`);
    if (!card) {
      card = document.createElement("li");
      card.className = "cand";
      card.dataset.index = cand.index;
      card.innerHTML = '<div class="cand-head"><span class="idx"></span><span class="badge"></span>' +
        '<span class="nums"></span></div><div class="cand-text"></div>';
      const after = [...list.children].find((c) => Number(c.dataset.index) > cand.index);
      list.insertBefore(card, after || null);
    }
    const status = cand.selected ? "selected" : cand.status;
    card.dataset.status = status;
    $(".idx", card).textContent = `#${cand.index}`;
    $(".badge", card).textContent = status === "pruned" ? `pruned at token ${cand.num_tokens}` : status;
    let bound = "";
    if (cand.status === "running" && cand.bound !== undefined) {
      bound = `<span title="the best score it can still reach">bound ${fmt(cand.bound)}</span>`;
    } else if (status === "pruned" && cand.bound !== undefined) {
      bound = `<span title="cut when its bound fell below S*">bound ${fmt(cand.bound)} &lt; S*</span>`;
    }
    $(".nums", card).innerHTML = `<span title="score so far">score ${fmt(cand.score)}</span>${bound}` +
      `<span>${cand.num_tokens} tok</span>`;
    const text = $(".cand-text", card);
    text.textContent = cand.text;
    text.scrollTop = text.scrollHeight;
  }

  finish() {
    const s = this.result.sharpening;
    const drawn = s.candidates_drawn || 1;
    const rows = [
      ["latency", `${(this.result.latency_ms / 1000).toFixed(2)} s`],
      ["first token", this.result.first_token_ms === null ? "—" : `${(this.result.first_token_ms / 1000).toFixed(2)} s`],
      ["generated tokens", s.generated_tokens],
      ["pruned", `${s.candidates_pruned} of ${drawn} (${Math.round((100 * s.candidates_pruned) / drawn)}%)`],
      ["selected", `#${s.selected_index}, score ${fmt(s.selected_score)}`],
    ];
    $(".summary", this.root).replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      return [dt, dd];
    }));
    $(".raw-json", this.root).textContent = JSON.stringify(s, null, 2);
  }
}

// The "more request fields" box: a JSON object, its `sharpening` (if any) an object too.
function extraFields(text) {
  if (!text) return {};
  let fields;
  try {
    fields = JSON.parse(text);
  } catch (error) {
    throw new Error(`more request fields: not valid JSON (${error.message})`);
  }
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  if (!isObject(fields) || (fields.sharpening !== undefined && !isObject(fields.sharpening))) {
    throw new Error("more request fields: write a JSON object, its sharpening an object too");
  }
  return fields;
}

// A short name for a side's settings, e.g. "none, temperature 0" or "server default".
function describe(config) {
  const strategy = config.strategy === SERVER_DEFAULT ? "server default" : config.strategy;
  return config.temperature === undefined ? strategy : `${strategy}, temperature ${config.temperature}`;
}

// ---- HTTP and server-sent events ----------------------------------------------------------

async function httpError(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body.error) {
      message = `${response.status}: ${body.error.message}` + (body.error.param ? ` (${body.error.param})` : "");
    }
  } catch (_) { /* not JSON: keep the status line */ }
  const error = new Error(message);
  error.status = response.status;
  return error;
}

// Yields {event, data} for every server-sent event of a fetch response.
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    flash("copied");
  } catch (_) {
    window.prompt("Copy this:", text);
  }
}

function flash(message) {
  const note = document.createElement("div");
  note.className = "toast";
  note.textContent = message;
  document.body.append(note);
  setTimeout(() => note.remove(), 1200);
}

// ---- the API key, the model, the history ----------------------------------------------------

function askForKey() {
  $("#key-form").hidden = false;
  $("#api-key").focus();
}

async function loadModel() {
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    if (response.status === 401) {
      $("#model").textContent = "this server needs an API key";
      askForKey();
      if (apiKey()) showError($("#error"), "the stored API key was refused; type the right one");
      return;
    }
    if (!response.ok) throw await httpError(response);
    const model = (await response.json()).data[0];
    $("#model").textContent = `${model.id} · context ${model.max_model_len} tokens`;
    showError($("#error"), "");
  } catch (error) {
    $("#model").textContent = "server unreachable";
    showError($("#error"), error.message);
  }
}

function history() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_STORE) || "[]");
  } catch (_) {
    return [];
  }
}

function remember(prompt, sides) {
  const entry = {
    at: new Date().toISOString(), prompt,
    sides: sides.map((side) => ({ name: side.name, config: side.config(), result: side.result && {
      ...side.result, sharpening: { ...side.result.sharpening, candidates: undefined } } })),
  };
  const entries = [entry, ...history()].slice(0, HISTORY_LIMIT);
  localStorage.setItem(HISTORY_STORE, JSON.stringify(entries));
  drawHistory();
}

function drawHistory() {
  const list = $("#history");
  list.replaceChildren(...history().map((entry) => {
    const item = document.createElement("li");
    const head = document.createElement("button");
    head.type = "button";
    head.className = "quiet history-prompt";
    head.title = "put this prompt and these settings back";
    head.textContent = `${new Date(entry.at).toLocaleTimeString()} · ${entry.prompt}`;
    head.addEventListener("click", () => restore(entry));
    item.append(head);
    for (const side of entry.sides) {
      const line = document.createElement("div");
      line.className = "history-side";
      const r = side.result;
      const stats = r ? `${(r.latency_ms / 1000).toFixed(2)} s, ${r.sharpening.generated_tokens} tok` : "failed";
      line.textContent = `${side.name} ${describe(side.config)}: ${r ? r.answer.trim() : ""} (${stats})`;
      item.append(line);
    }
    return item;
  }));
}

function restore(entry) {
  $("#prompt").value = entry.prompt;
  for (const side of entry.sides) SIDES.find((s) => s.name === side.name)?.setConfig(side.config);
}

// ---- wiring -------------------------------------------------------------------------------

const SIDES = [new Side($("#side-a")), new Side($("#side-b"))];

async function runBoth() {
  const prompt = $("#prompt").value.trim();
  if (!prompt) {
    showError($("#error"), "type a prompt first");
    return;
  }
  showError($("#error"), "");
  const button = $("#run");
  button.disabled = true;
  document.body.classList.add("busy");
  try {
    for (const side of SIDES) side.reset(); // no stale results beside the new run
    for (const side of SIDES) await side.run(prompt);
    if (SIDES.some((side) => side.result)) remember(prompt, SIDES);
  } finally {
    button.disabled = false;
    document.body.classList.remove("busy");
  }
}

$("#run").addEventListener("click", runBoth);
$("#prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runBoth();
});
$("#key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("#api-key").value.trim());
  loadModel();
});
$("#clear-history").addEventListener("click", () => {
  localStorage.removeItem(HISTORY_STORE);
  drawHistory();
});
drawHistory();
loadModel();
