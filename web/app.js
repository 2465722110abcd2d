// The page: settings (also URL parameters), one WebRun from the wasm module, and the views.
// Everything it trains, measures and saves goes through the library's run (src/web.rs).
import uPlot from "./vendor/uplot/uPlot.esm.js";
import loadQnn from "./threads.js";

const $ = (id) => document.getElementById(id);
const form = $("form");
const params = new URLSearchParams(location.search);
// The wasm module: the threaded one (pkg-mt/: rayon over a pool of Web Workers on shared
// memory, every core for the CPU backend) when the page is cross-origin isolated, else the
// single-threaded pkg/ (also with ?threads=1, or when the threaded one cannot start): threads.js,
// as the npm package loads it.
// cpu: { threads, note (which module, in words), workers }
const { module: qnn, ...cpu } = await loadQnn({ single: new URL("./pkg/qnn.js", import.meta.url), threads: params.get("threads") || undefined });
const { WebRun, WebPictures, summarize, model_settings, default_settings, model_name, net_presets, export_model, saved_progress, threads_working } = qnn;
// pictures: the decoded set of your own pictures (a WebPictures) and its info; picturesSource:
// the files it was decoded from, kept to decode again when "skip unreadable pictures" changes
const state = { run: null, files: [], history: [], running: false, paused: false, chart: null, backend: null, modelName: null, presets: [],
  pictures: null, picturesInfo: null, picturesSource: null, loading: false, ready: false,
  // a model shown but not trained here (the ready one, or one loaded to evaluate): what the
  // download buttons give
  shownModel: null };
// what the browser test and the benchmark read
window.qnn = { status: "loading", reports: [], errors: [], device: null, epochProbes: 0, downloads: [],
  // the CPU backend's threads in this page (1: the single-threaded module) and why
  threads: cpu.threads, threadsNote: cpu.note,
  // how many threads take part in a parallel loop of n small jobs (the test: the workers work)
  threadsWorking: (n) => threads_working(n),
  // a run kept for a reload: epochs written to IndexedDB, the offer shown on load (or null),
  // "indexeddb" or "none"
  savedEpochs: 0, resumeOffer: null, storage: null };
// the chart's and table's rows (a resumed run's saved epochs included)
Object.defineProperty(window.qnn, "history", { get: () => state.history });

function message(text) { $("message").textContent = text || ""; if (text) window.qnn.errors.push(text); }
function status(text) { $("status").textContent = text; }

// ---- settings <-> form <-> URL
const numbers = ["bits", "nla", "nfa", "nlb", "nfb", "nlc", "nfc", "epochs", "lr", "lr_final", "batch", "seed", "valid", "limit", "crop_pad"];
const checks = ["quantized", "sym", "flip"];
// fills the form's fields from an object or from URL parameters (strings); unknown keys and
// empty values are skipped
function fill(entries) {
  for (const [k, v] of entries) {
    const el = form.elements[k];
    if (!el || v === null || v === undefined) continue;
    if (checks.includes(k)) el.checked = v === true || v === "1" || v === "true";
    else el.value = v;
  }
}
// the network: the seed's blocks (the fields above), or a layer list (a net file's text)
const isList = () => form.elements.arch.value === "list";
function settings() {
  const s = {};
  for (const k of numbers) { const v = form.elements[k].value; if (v !== "") s[k] = Number(v); }
  for (const k of checks) s[k] = form.elements[k].checked;
  s.dataset = form.elements.dataset.value;
  s.nl = form.elements.nl.value;
  if (isList()) s.net = form.elements.net.value;
  // your own pictures: the network follows their shape and classes
  const i = state.picturesInfo;
  if (s.dataset === "folder" && i) s.pictures = { chw: i.chw, classes: i.classes, valid: i.valid, name: i.name };
  return s;
}
function syncUrl() {
  const p = new URLSearchParams();
  const s = settings();
  // the pictures themselves cannot be in a link: it says "folder", and the page asks for them
  delete s.pictures;
  for (const [k, v] of Object.entries(s)) p.set(k, typeof v === "boolean" ? (v ? "1" : "0") : v);
  p.set("arch", form.elements.arch.value);
  p.set("device", form.elements.device.value);
  history.replaceState(null, "", "?" + p.toString());
}
// the summary of the network, or why it is refused (for a layer list: the line and the layer)
function updateSummary() {
  const summary = $("summary"), line = $("summaryline");
  try {
    const text = summarize(JSON.stringify(checked()));
    fillTable(summary, text);
    line.textContent = "the network: " + (text.trim().split("\n").pop().replace(/^total:\s*/, "") || "");
    summary.classList.remove("refused"); line.classList.remove("refused"); message("");
  } catch (e) {
    summary.textContent = String(e); line.textContent = "refused: " + String(e).split("\n")[0];
    summary.classList.add("refused"); line.classList.add("refused"); message(String(e));
  }
}
// a layer table as `qnn train` prints it into a <pre>: the rows keep their columns, the long
// total line (the last) wraps
function fillTable(pre, text) {
  const lines = text.replace(/\n$/, "").split("\n");
  const total = document.createElement("span");
  total.className = "total";
  total.textContent = lines.pop();
  pre.replaceChildren(lines.map((l) => l + "\n").join(""), total);
}
// the settings, refusing an empty layer list (which the library would read as the seed's blocks)
function checked() {
  const s = settings();
  if (isList() && s.net.trim() === "") throw "the layer list is empty: pick a network to start from, or write one [[layer]] per layer";
  return s;
}
// shows the fields of the chosen kind of network
function showArch() {
  $("seedfields").hidden = isList();
  $("listfields").hidden = !isList();
}
// choosing the layer list with nothing in it starts from the first preset (the seed's network)
for (const radio of form.elements.arch) {
  radio.addEventListener("input", () => { if (isList() && form.elements.net.value.trim() === "") usePreset(state.presets[0]?.name); });
}
function usePreset(name) {
  const p = state.presets.find((p) => p.name === name);
  if (!p) return;
  form.elements.preset.value = p.name;
  form.elements.net.value = p.toml;
}
form.elements.preset.addEventListener("input", () => usePreset(form.elements.preset.value));
// once edited, the text is no longer the preset's
form.elements.net.addEventListener("input", () => {
  const p = state.presets.find((p) => p.name === form.elements.preset.value);
  if (p && p.toml !== form.elements.net.value) form.elements.preset.value = "";
});
// element listeners run before this one (the event bubbles to the form)
form.addEventListener("input", () => { showArch(); syncUrl(); updateSummary(); });

// ---- files: picker and drop
async function takeFiles(list) {
  state.files = [];
  for (const f of list) state.files.push([f.name, new Uint8Array(await f.arrayBuffer())]);
  $("filelist").textContent = state.files.map((f) => f[0]).join(", ");
}
$("files").addEventListener("change", (e) => takeFiles(e.target.files));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (state.running || state.loading) return;
  // the entries must be taken before the handler returns: the drop's data is gone after it
  const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  const files = [...e.dataTransfer.files];
  if (entries.some((en) => en.isDirectory)) return takePictureEntries(entries);
  if (files.length === 1 && /\.zip$/i.test(files[0].name)) return takeZip(files[0]);
  takeFiles(files);
});

// ---- your own pictures: a folder (chosen or dropped) or a .zip of one, decoded in wasm
// Most bytes of files the page reads for one set: wasm has 4 GiB of memory at most, and the
// decoded pixels need room beside the files.
const MAX_PICTURE_BYTES = 1 << 30;
const skipBad = () => $("skipbad").checked;
// every file below the dropped entries as [path, File]; a directory reader answers in batches
// (Chromium: 100 entries), so it is read until it answers with none
async function walkEntries(entries) {
  const out = [];
  const files = (entry) => new Promise((res, rej) => entry.file(res, rej));
  const batch = (reader) => new Promise((res, rej) => reader.readEntries(res, rej));
  async function walk(entry) {
    if (entry.isFile) out.push([entry.fullPath.replace(/^\//, ""), await files(entry)]);
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (let b = await batch(reader); b.length > 0; b = await batch(reader)) for (const en of b) await walk(en);
    }
  }
  for (const en of entries) await walk(en);
  return out;
}
window.qnn.walkEntries = walkEntries; // for the browser test (a drop of a folder cannot be faked)
async function takePictureEntries(entries) {
  // one dropped folder names the set; several (the class folders themselves) are "pictures"
  const dirs = entries.filter((en) => en.isDirectory);
  const name = dirs.length === 1 ? dirs[0].name : "pictures";
  await guarded(async () => takePictureFiles(name, await walkEntries(entries)));
}
// [path, File] pairs: read (with progress), then decoded
async function takePictureFiles(name, list) {
  const total = list.reduce((n, [, f]) => n + f.size, 0);
  if (total > MAX_PICTURE_BYTES) throw `${name}: ${(total / 2 ** 20).toFixed(0)} MiB of files, more than the page takes (${MAX_PICTURE_BYTES / 2 ** 20} MiB): train on it with qnn train -ds folder --data-dir ${name}`;
  const paths = [], bytes = [];
  for (let i = 0; i < list.length; i += 64) {
    picturesStatus(`${name}: reading files, ${i} of ${list.length}…`);
    const chunk = list.slice(i, i + 64);
    const read = await Promise.all(chunk.map(([, f]) => f.arrayBuffer()));
    chunk.forEach(([p], k) => { paths.push(p); bytes.push(new Uint8Array(read[k])); });
  }
  state.picturesSource = { kind: "files", name, paths, bytes };
  await decodePictures();
}
async function takeZip(file) {
  await guarded(async () => {
    if (file.size > MAX_PICTURE_BYTES) throw `${file.name}: ${(file.size / 2 ** 20).toFixed(0)} MiB, more than the page takes (${MAX_PICTURE_BYTES / 2 ** 20} MiB): train on it with qnn train -ds folder --data-dir ${file.name}`;
    picturesStatus(`${file.name}: reading…`);
    state.picturesSource = { kind: "zip", name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
    await decodePictures();
  });
}
// decodes state.picturesSource in wasm; on a refusal the page keeps the set it had, if any
async function decodePictures() {
  const src = state.picturesSource;
  if (!src) return;
  const n = src.kind === "zip" ? "the .zip's" : `${src.paths.length}`;
  picturesStatus(`${src.name}: decoding ${n} files…`);
  // the decoding blocks this thread: let the browser show the line above first
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const t0 = performance.now();
  const p = src.kind === "zip" ? WebPictures.from_zip(src.name, src.bytes, skipBad())
    : WebPictures.from_files(src.name, src.paths, src.bytes, skipBad());
  if (state.pictures) state.pictures.free();
  state.pictures = p;
  state.picturesInfo = JSON.parse(p.info());
  state.picturesInfo.seconds = (performance.now() - t0) / 1000;
  window.qnn.pictures = state.picturesInfo;
  form.elements.dataset.value = "folder";
  showPictures();
  syncUrl(); updateSummary();
}
// runs a picture load: a refusal is a message (naming the file), and the page keeps working
async function guarded(f) {
  message(""); state.loading = true;
  try { await f(); } catch (e) {
    message(String(e));
    if (state.picturesInfo) showPictures(); else picturesStatus("");
  }
  state.loading = false;
}
function picturesStatus(text) { $("pictures").textContent = text; }
// what was read: images, classes (by name), shape, splits, what was skipped and why
function showPictures() {
  const i = state.picturesInfo, box = $("pictures");
  const [c, h, w] = i.chw;
  box.innerHTML = `<div><b>${esc(i.name)}</b>: ${esc(i.report)}; ${i.classes} classes, ${c}×${h}×${w} (${c === 1 ? "grey" : "RGB"}); `
    + `${i.train} training, ${i.valid} validation, ${i.test} test images; decoded in ${i.seconds.toFixed(2)} s</div>`
    + `<div class="classes">classes: ${i.class_names.map(esc).join(", ")}</div>`
    + i.skipped.slice(0, 5).map(([p, why]) => `<div class="skipped">skipped ${esc(p)}: ${esc(why)}</div>`).join("")
    + (i.skipped.length > 5 ? `<div class="skipped">… and ${i.skipped.length - 5} more</div>` : "");
}
$("folder").addEventListener("change", async (e) => {
  const files = [...e.target.files];
  e.target.value = "";
  if (!files.length || state.running || state.loading) return;
  // webkitRelativePath starts with the chosen folder's name: "pets/cats/1.png"
  const name = files[0].webkitRelativePath.split("/")[0] || "pictures";
  await guarded(() => takePictureFiles(name, files.map((f) => [f.webkitRelativePath || f.name, f])));
});
$("zip").addEventListener("change", async (e) => {
  const f = e.target.files[0];
  e.target.value = "";
  if (f && !state.running && !state.loading) await takeZip(f);
});
$("skipbad").addEventListener("change", () => { if (state.picturesSource && !state.running && !state.loading) guarded(decodePictures); });

// ---- device: WebGPU where the browser has a hardware adapter, else the CPU backend in wasm
async function chooseDevice() {
  const want = form.elements.device.value;
  if (want === "cpu") return ["cpu", `CPU backend (WebAssembly, ${cpu.note}), as asked`];
  if (!navigator.gpu) return ["cpu", `CPU backend (WebAssembly, ${cpu.note}): this browser has no WebGPU`];
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return ["cpu", `CPU backend (WebAssembly, ${cpu.note}): WebGPU found no adapter`];
  const info = adapter.info || {};
  const fallback = adapter.isFallbackAdapter || info.isFallbackAdapter || /swiftshader/i.test(`${info.vendor} ${info.architecture} ${info.description}`);
  if (want === "gpu") return ["gpu", `WebGPU (${info.vendor || "adapter"} ${info.architecture || ""})${fallback ? ", a software fallback, as asked" : ""}`];
  if (fallback) return ["cpu", `CPU backend (WebAssembly, ${cpu.note}): the only WebGPU adapter is a software fallback (choose WebGPU to use it anyway)`];
  return ["gpu", `WebGPU (${info.vendor || "adapter"} ${info.architecture || ""})`];
}

// ---- chart and table
function chart() {
  const h = state.history;
  const data = [h.map((r) => r.epoch), h.map((r) => r.train_loss), h.map((r) => r.val_loss), h.map((r) => r.val_error), h.map((r) => r.test_error)];
  if (!state.chart) {
    state.chart = new uPlot({
      width: Math.max(280, $("chart").clientWidth || window.innerWidth - 40), height: 260,
      scales: { x: { time: false }, err: { auto: true } },
      legend: { live: false },
      // epochs are whole numbers: no 1.1, 1.2 … ticks
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100] }, { label: "loss" }, { side: 1, scale: "err", label: "error %", grid: { show: false } }],
      series: [{ label: "epoch" },
        { label: "training loss", stroke: "#27c" }, { label: "validation loss", stroke: "#d22" },
        { label: "validation error %", stroke: "#e80", scale: "err" }, { label: "test error % (best)", stroke: "#2a7", scale: "err" }],
    }, data, $("chart"));
  } else state.chart.setData(data);
  $("curvescap").hidden = true;
  const row = h[h.length - 1];
  const tr = document.createElement("tr");
  for (const v of [row.epoch, row.seconds.toFixed(1) + " s", row.images_per_second.toFixed(1), row.lr.toExponential(2),
    row.train_loss.toFixed(4), row.val_loss.toFixed(4), row.val_error.toFixed(2) + "%", row.best_epoch, row.test_error.toFixed(2) + "%"]) {
    const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
  }
  $("epochs").querySelector("tbody").appendChild(tr);
}

// ---- training
function buttons() {
  $("start").disabled = state.running;
  $("pause").disabled = !state.running;
  $("stop").disabled = !state.running;
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  for (const el of form.elements) el.disabled = state.running;
}

async function makeRun(model, mode) {
  const [device, why] = await chooseDevice();
  state.backend = device;
  $("device").textContent = "device: " + why;
  window.qnn.device = device;
  const s = checked();
  const files = ["MNIST", "CIFAR-10"].includes(s.dataset) ? state.files : [];
  // the name of the files it saves, as `qnn train` names them: fixed when the run starts
  state.modelName = model_name(JSON.stringify(s));
  // the run takes a handle on the decoded pictures: the page keeps its own for the next run
  const pictures = s.dataset === "folder" && state.pictures ? state.pictures.handle() : undefined;
  return await WebRun.create(JSON.stringify(s), files, device, model || undefined, mode || undefined, pictures);
}

// `saved`: a record of an interrupted run (readSaved) to continue, else a new run
async function start(saved) {
  message("");
  state.running = true; state.paused = false; buttons();
  state.history = []; $("epochs").querySelector("tbody").innerHTML = ""; $("curvescap").hidden = false;
  $("resume").hidden = true; window.qnn.resumeOffer = null;
  try {
    status(saved ? "resuming…" : "preparing…"); window.qnn.status = "preparing";
    let run;
    if (saved) {
      try { run = await resumeRun(saved); } catch (e) {
        // a stale or damaged record would fail the same way after every reload
        await dropSaved();
        throw `The interrupted run could not be resumed, so it was discarded: ${e}`;
      }
    } else {
      run = await makeRun(state.startModel, state.startModel ? "finetune" : null);
      // a new run: the interrupted one (if any) is no longer offered
      await dropSaved();
    }
    // your own run replaces the ready model (or the one loaded before)
    replaceRun(run);
    state.startModel = null;
    showPad(state.run.input_shape()[0]);
    showSummary(state.run, "this run's network");
    // a resumed run's saved epochs, from its state: the chart and the table as they were
    for (const r of JSON.parse(run.history())) { state.history.push(r); chart(); }
    const keep = await keeping(saved ? saved.settings : checked());
    status(`training on ${state.run.device()}`); window.qnn.status = "training";
    while (!state.run.is_finished()) {
      const t0 = performance.now();
      const report = JSON.parse(await state.run.epoch((step, steps, loss) => {
        $("bar").style.width = `${(100 * step) / steps}%`;
        const secs = (performance.now() - t0) / 1000;
        const ips = (step * settings().batch) / Math.max(secs, 1e-3);
        status(`epoch ${state.history.length + 1}: step ${step} of ${steps}, ${ips.toFixed(1)} images/s` + (loss === undefined ? "" : `, loss ${loss.toFixed(4)}`));
      }, (probe) => { window.qnn.epochProbes++; drawProbe(probe); }));
      if (report.interrupted) { status(`stopped during epoch ${report.epoch}; the best model so far is kept`); break; }
      state.history.push(report); window.qnn.reports.push(report);
      chart();
      // a finished run is not offered after a reload; an unfinished one is kept
      if (state.run.is_finished()) await dropSaved();
      else if (keep) await saveProgress(state.run, keep);
      offerDownloads();
      // the views after each epoch, on the validation images (as the window shows a run)
      await showViews(state.run, "valid", `this run's network, after epoch ${report.epoch}`);
    }
    const s = JSON.parse(state.run.state());
    if (state.run.is_finished()) status(`done: best epoch ${s.best_epoch}, test error ${s.test_error.toFixed(2)}% (accuracy ${(100 - s.test_error).toFixed(2)}%)`);
    await showGrid();
    window.qnn.state = s; window.qnn.status = "done";
  } catch (e) {
    message(String(e)); status("stopped by an error"); window.qnn.status = "error";
  }
  state.running = false; buttons();
}

$("start").addEventListener("click", () => start());
$("pause").addEventListener("click", () => { state.paused = !state.paused; state.run.pause(state.paused); buttons(); });
$("stop").addEventListener("click", () => { state.paused = false; state.run.pause(false); state.run.stop(); });
// the best model as qnn writes it, or as an ONNX / QONNX file (qnn export's bytes, made here)
// (a model that was not trained here, the ready one or one loaded to evaluate: its own bytes)
function download(format) {
  let bytes;
  try {
    bytes = (state.run && state.run.best_model()) || state.shownModel;
    if (bytes && format) bytes = export_model(bytes, format);
  } catch (e) { return message(String(e)); }
  if (!bytes) return;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  a.download = `${state.modelName}.${{ onnx: "onnx", qonnx: "qonnx.onnx" }[format] || "safetensors"}`;
  a.click();
  window.qnn.downloads.push({ name: a.download, bytes: bytes.length });
}
// the buttons are on while there is a model to give: a run's best, or the model shown
function offerDownloads() {
  const has = Boolean((state.run && state.run.best_model()) || state.shownModel);
  for (const id of ["download", "download-onnx", "download-qonnx"]) $(id).disabled = !has;
}
$("download").addEventListener("click", () => download(null));
$("download-onnx").addEventListener("click", () => download("onnx"));
$("download-qonnx").addEventListener("click", () => download("qonnx"));

// ---- a run that survives a reload: after each epoch, the run's state (WebRun.state_bytes: the
// CLI's .state.safetensors), its best model, the settings and the history are one IndexedDB
// record, replaced in one transaction, so a reload mid-write leaves the previous record whole.
// Only mnist-mini runs: the page cannot read your own files again without you.
const DB = "qnn", STORE = "runs", KEY = "interrupted", RECORD_VERSION = 1;
let dbOpen = null;
// the database, or null where the browser keeps none for the page (some private modes, a
// refusal, an opaque origin): then runs are simply not kept
function openDb() {
  dbOpen ??= new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      // a database of this name without the store (not this page's) is left alone
      req.onsuccess = () => resolve(req.result.objectStoreNames.contains(STORE) ? req.result : null);
      req.onerror = (e) => { e.preventDefault(); resolve(null); };
      req.onblocked = () => resolve(null);
    } catch { resolve(null); }
    // an open that never answers must not hold the page
    setTimeout(() => resolve(null), 5000);
  }).then((db) => { window.qnn.storage = db ? "indexeddb" : "none"; return db; });
  return dbOpen;
}
// one request in its own transaction; resolves when the transaction is done (written)
async function storeOp(mode, f) {
  const db = await openDb();
  if (!db) return undefined;
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = f(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}
const readSaved = () => storeOp("readonly", (s) => s.get(KEY));
// deleting never fails the page: at worst a stale record is refused (and dropped) next time
const dropSaved = () => storeOp("readwrite", (s) => s.delete(KEY)).catch(() => {});
function keepNote(text) { $("keepnote").textContent = text || ""; $("keepnote").hidden = !text; }
// what a run's records start from (null: the run is not kept), and the note saying which
async function keeping(s) {
  if (s.dataset !== "mnist-mini") {
    keepNote("A reload loses this run: only runs on the built-in mnist-mini are kept for a reload (your own files would have to be chosen again).");
    return null;
  }
  if (!(await openDb())) {
    keepNote("A reload loses this run: this browser keeps no storage for the page (a private window?). Everything else works.");
    return null;
  }
  keepNote("Kept in this browser after each epoch: a reload offers to resume it.");
  return { version: RECORD_VERSION, settings: s, arch: form.elements.arch.value, preset: form.elements.preset.value,
    device: state.backend, modelName: state.modelName };
}
async function saveProgress(run, base) {
  try {
    const record = { ...base, state: await run.state_bytes(), best: run.best_model() || null,
      history: state.history, epoch: state.history.length, saved: Date.now() };
    await storeOp("readwrite", (s) => s.put(record, KEY));
    window.qnn.savedEpochs++;
  } catch (e) {
    // the run goes on; only the reload would lose it
    keepNote(`A reload loses this run: it could not be kept (${e}).`);
  }
}
// the form as the saved run had it (its fields, the kind of network, the device it ran on)
function restoreForm(saved) {
  for (const k of numbers) form.elements[k].value = saved.settings[k] ?? "";
  fill(Object.entries(saved.settings).filter(([k]) => !numbers.includes(k)));
  form.elements.arch.value = saved.arch === "list" ? "list" : "seed";
  form.elements.preset.value = saved.preset || "";
  form.elements.device.value = saved.device === "gpu" ? "gpu" : "cpu";
  showArch(); syncUrl(); updateSummary();
}
// the saved run rebuilt from its state, on the device it ran on (the same result needs the same
// backend)
async function resumeRun(saved) {
  restoreForm(saved);
  const device = saved.device === "gpu" ? "gpu" : "cpu";
  state.backend = device; window.qnn.device = device;
  $("device").textContent = `device: ${device === "gpu" ? "WebGPU" : "CPU backend (WebAssembly)"}, where the interrupted run trained`;
  state.modelName = saved.modelName || model_name(JSON.stringify(saved.settings));
  // the settings the run was made with, exactly (not their round trip through the form)
  return await WebRun.resume(JSON.stringify(saved.settings), [], device, saved.state, saved.best || undefined, undefined);
}
// on load: an unfinished saved run is offered (Resume / Discard); a finished one is dropped, a
// damaged or foreign one is dropped with a message. Resolves to whether an offer is shown.
async function offerSaved() {
  let saved;
  try { saved = await readSaved(); } catch { return false; }
  if (!saved) return false;
  let text, done;
  try {
    if (saved.version !== RECORD_VERSION || !(saved.state instanceof Uint8Array) || typeof saved.settings !== "object")
      throw "it was written by another version of this page";
    const [d, planned] = saved_progress(saved.state);
    done = d;
    if (done >= planned) { await dropSaved(); return false; }
    const s = saved.settings, h = saved.history || [], last = h[h.length - 1];
    // the settings in words; model_name also refuses settings the library would not take
    const name = model_name(JSON.stringify(s));
    const net = saved.arch === "list" ? name : `${s.dataset}, blocks ${s.nla}×${s.nfa} / ${s.nlb}×${s.nfb} / ${s.nlc}×${s.nfc}, `
      + (s.quantized ? `${s.bits}-bit ${s.nl}` : `float ${s.nl}`);
    const parts = [net, `batch ${s.batch}`, `LR ${s.lr} → ${s.lr_final}`, `seed ${s.seed}`];
    if (s.limit) parts.push(`${s.limit} training images`);
    if (s.valid) parts.push(`${s.valid} validation images`);
    parts.push(saved.device === "gpu" ? "WebGPU" : "CPU (wasm)");
    if (last) parts.push(`best test error so far ${last.test_error.toFixed(2)}% (epoch ${last.best_epoch})`);
    text = `A run was interrupted after epoch ${done} of ${planned} (${parts.join(", ")}; saved ${new Date(saved.saved).toLocaleString()}).`;
  } catch (e) {
    await dropSaved();
    message(`A saved run could not be read, so it was discarded: ${e}`);
    return false;
  }
  $("resumetext").textContent = text;
  $("resume").hidden = false;
  // a reload keeps the scroll position: the offer (in the header) must not wait out of sight
  window.scrollTo(0, 0);
  window.qnn.resumeOffer = { epoch: done, text };
  $("resumerun").onclick = () => { if (!state.running) start(saved); };
  $("discardrun").onclick = async () => {
    $("resume").hidden = true; window.qnn.resumeOffer = null;
    await dropSaved();
    status("the interrupted run was discarded");
  };
  return true;
}

// ---- loading a model: evaluate it, or fine-tune it with the form's schedule
$("model").addEventListener("change", async (e) => {
  const f = e.target.files[0];
  e.target.value = "";
  if (!f || state.running) return;
  message("");
  try {
    const bytes = new Uint8Array(await f.arrayBuffer());
    const m = JSON.parse(model_settings(bytes));
    for (const k of ["bits", "nla", "nfa", "nlb", "nfb", "nlc", "nfc"]) form.elements[k].value = m[k];
    form.elements.quantized.checked = m.quantized; form.elements.sym.checked = m.sym;
    form.elements.nl.value = m.nl; form.elements.dataset.value = m.dataset;
    // a model with a layer list: its layers as a net file
    form.elements.arch.value = m.net ? "list" : "seed";
    if (m.net) { form.elements.preset.value = ""; form.elements.net.value = m.net; }
    showArch(); syncUrl(); updateSummary();
    if ($("modelmode").value === "finetune") { state.startModel = bytes; return start(); }
    state.running = true; buttons(); status(`evaluating ${f.name}…`);
    replaceRun(await makeRun(bytes, "init"));
    state.shownModel = bytes; state.modelName = f.name.replace(/\.safetensors$/, "");
    offerDownloads();
    const r = JSON.parse(await state.run.evaluate());
    status(`${f.name}: test loss ${r.loss.toFixed(4)}, test error ${r.error.toFixed(2)}%`);
    await showGrid();
    await showViews(state.run, "test", `the loaded model, ${f.name}`);
    window.qnn.evaluation = r;
  } catch (err) {
    message(`${f.name}: ${err}`);
  }
  state.running = false; buttons();
});

// ---- what the model does: a grid of test images, and a pad to draw a digit
// the pad draws grey pictures: for colour inputs it is hidden, with a note
function showPad(c) {
  $("padbox").hidden = c !== 1;
  $("padnote").hidden = c === 1;
}
async function showGrid() {
  const run = state.run;
  if (!run) return;
  const [c, h, w] = run.input_shape();
  showPad(c);
  const n = 48;
  const pixels = run.test_images(n), labels = run.test_labels(n);
  const count = labels.length;
  // a row of scores per image, one per class; the prediction is the first highest
  const k = run.classes(), names = run.class_names();
  const scores = await run.predict(pixels);
  const grid = $("grid"); grid.innerHTML = "";
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    const row = scores.slice(i * k, (i + 1) * k);
    const pred = row.indexOf(Math.max(...row));
    const fig = document.createElement("figure");
    const cv = document.createElement("canvas"); cv.width = w; cv.height = h;
    // shown 56 pixels on the longer side, keeping the pictures' aspect
    cv.style.width = `${Math.round((56 * w) / Math.max(w, h))}px`; cv.style.height = `${Math.round((56 * h) / Math.max(w, h))}px`;
    const ctx = cv.getContext("2d"), img = ctx.createImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 3; k++) img.data[4 * p + k] = pixels[i * c * h * w + (c === 3 ? k : 0) * h * w + p];
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    const cap = document.createElement("figcaption"); cap.textContent = `${names[pred]} (true ${names[labels[i]]})`;
    if (pred !== labels[i]) { fig.className = "wrong"; wrong++; }
    if (c === 1) {
      const one = pixels.slice(i * h * w, (i + 1) * h * w);
      fig.title = "put it on the draw pad"; fig.classList.add("pick");
      fig.addEventListener("click", () => putOnPad(one, h, w));
    }
    fig.append(cv, cap); grid.appendChild(fig);
  }
  window.qnn.gridWrong = wrong;
}

const pad = $("pad"), pctx = pad.getContext("2d");
pctx.fillStyle = "#000"; pctx.fillRect(0, 0, 280, 280);
let drawing = false;
pad.addEventListener("pointerdown", (e) => { drawing = true; stroke(e); });
pad.addEventListener("pointermove", (e) => drawing && stroke(e));
window.addEventListener("pointerup", () => { if (drawing) { drawing = false; classifyPad(); } });
$("clear").addEventListener("click", () => { pctx.fillStyle = "#000"; pctx.fillRect(0, 0, 280, 280); $("scores").innerHTML = ""; });
// a grey test image on the pad, scored as a drawing is: each pixel a block of the pad
// (nearest neighbour, so the pad's averaging gives a 28×28 image back exactly)
function putOnPad(px, h, w) {
  const small = document.createElement("canvas"); small.width = w; small.height = h;
  const sctx = small.getContext("2d"), img = sctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) { img.data.fill(px[p], 4 * p, 4 * p + 3); img.data[4 * p + 3] = 255; }
  sctx.putImageData(img, 0, 0);
  pctx.imageSmoothingEnabled = false;
  pctx.drawImage(small, 0, 0, 280, 280);
  pad.scrollIntoView({ block: "nearest" });
  classifyPad();
}
function stroke(e) {
  // the canvas is 280×280 pixels, shown smaller on a narrow phone: scale the pointer to it
  const r = pad.getBoundingClientRect();
  const k = pad.width / r.width;
  pctx.fillStyle = "#fff"; pctx.beginPath();
  pctx.arc((e.clientX - r.left) * k, (e.clientY - r.top) * k, 11, 0, 2 * Math.PI); pctx.fill();
}
// a class name as HTML text (names come from the data, e.g. folder names)
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
async function classifyPad() {
  if (!state.run || state.running) return;
  const [c, h, w] = state.run.input_shape();
  if (c !== 1) return;
  // 280×280 → h×w by averaging the cells (10×10 for MNIST's 28×28), as MNIST digits are grey on black
  const src = pctx.getImageData(0, 0, 280, 280).data, px = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const y0 = Math.floor((y * 280) / h), y1 = Math.floor(((y + 1) * 280) / h);
    const x0 = Math.floor((x * 280) / w), x1 = Math.floor(((x + 1) * 280) / w);
    let s = 0;
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += src[4 * (yy * 280 + xx)];
    px[y * w + x] = Math.round(s / ((y1 - y0) * (x1 - x0)));
  }
  try {
    const scores = await state.run.predict(px), names = state.run.class_names();
    const best = scores.indexOf(Math.max(...scores));
    window.qnn.pad = { best, name: names[best], scores: [...scores] };
    // every class up to ten, else the ten highest scores (the first class of equal ones first)
    let shown = [...scores.keys()];
    if (shown.length > 10) shown = shown.sort((a, b) => scores[b] - scores[a] || a - b).slice(0, 10);
    $("scores").innerHTML = shown.map((k) => { const v = scores[k]; return (
      `<div>${k === best ? "<b>" : ""}${esc(names[k])}: ${v.toFixed(2).padStart(6)} <span style="width:${Math.max(0, (v + 2) * 20)}px"></span>${k === best ? "</b>" : ""}</div>`); }).join("");
  } catch (e) { message(String(e)); }
}

// ---- the window's views (src/inspect.rs computes them; here they are only drawn): the first
// layer's filters at their levels, the activations on the levels, the confusion matrix, the model
function replaceRun(run) {
  if (state.run && state.run !== run) state.run.free();
  state.run = run;
  state.shownModel = null;
  if (state.ready) { state.ready = false; $("modelnote").hidden = true; }
  offerDownloads();
}
// `what`: which model the views show, in words
// (a run replaced meanwhile, e.g. Start pressed while the ready model loads, is left alone)
async function showViews(run, split, what) {
  try {
    if (run !== state.run) return;
    showSummary(run, what);
    const probe = await run.probe();
    if (run !== state.run) return;
    drawProbe(probe);
    const matrix = await run.confusion(split);
    if (run !== state.run) return;
    drawConfusion(JSON.parse(matrix));
  } catch (e) { message(String(e)); }
}
// the model's energy per inference and size in a line, then the layers as `qnn train` prints them
function showSummary(run, what) {
  const s = JSON.parse(run.summary());
  window.qnn.summary = s;
  if (what) $("modelwhat").textContent = what;
  $("energy").textContent = `${s.energy_uj.toFixed(3)} µJ per inference (45 nm model) · ${s.params.toLocaleString("en")} parameters, `
    + `${(s.weight_bytes / 1024).toFixed(1)} KiB (float32: ${(s.float_bytes / 1024).toFixed(1)} KiB) · ${(s.macs / 1e6).toFixed(2)} M MACs per image`;
  fillTable($("modelsummary"), s.text);
}
// a probe's JSON (WebRun.probe: measured on the first validation images), or null for a network
// without a conv layer
function drawProbe(json) {
  const cv = $("filters");
  if (!json) {
    $("filterscap").textContent = "(none: the network has no conv layer)";
    $("histcap").textContent = "(none: the network has no conv layer)";
    cv.width = 0; cv.height = 0; $("hists").innerHTML = "";
    window.qnn.probe = null;
    return;
  }
  const p = JSON.parse(json);
  window.qnn.probe = p;
  drawFilters(p.filters);
  $("histcap").textContent = `on ${p.images} validation images`;
  const box = $("hists"); box.innerHTML = "";
  for (const h of p.activations) {
    const div = document.createElement("div"); div.className = "hist";
    const cap = document.createElement("div"); cap.textContent = h.caption + (h.non_finite ? ` (${h.non_finite} not finite)` : "");
    const c = document.createElement("canvas"); c.width = 300; c.height = 40;
    // the levels and their counts when pointed at (the first 32)
    c.title = h.levels.slice(0, 32).map((l, i) => `${l.toFixed(4).padStart(8)}: ${h.counts[i]}`).join("\n");
    const ctx = c.getContext("2d");
    ctx.strokeStyle = "#aaa"; ctx.strokeRect(0.5, 0.5, 299, 39);
    const max = Math.max(1, ...h.counts), bw = 300 / Math.max(1, h.counts.length);
    ctx.fillStyle = "#27c";
    h.counts.forEach((n, i) => { const bh = (n / max) * 38; if (n > 0) ctx.fillRect(i * bw + 0.5, 39 - bh, Math.max(1, bw - 1), bh); });
    div.append(cap, c); box.appendChild(div);
  }
}
// each filter's kernels side by side (one per input channel), a shade of grey per level: black
// the lowest, white the highest
function drawFilters(f) {
  $("filterscap").textContent = f.caption;
  // a filter's channels 1 pixel apart, filters 4 pixels apart
  const cell = Math.max(2, Math.round(36 / f.size)), gap = 4, taps = f.size * f.size;
  const kernel = cell * f.size + 1, width = kernel * f.cin - 1 + gap;
  const perRow = Math.max(1, Math.floor(500 / width));
  const cv = $("filters");
  cv.width = Math.min(f.cout, perRow) * width;
  cv.height = Math.ceil(f.cout / perRow) * (kernel - 1 + gap);
  const ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, cv.width, cv.height);
  for (let n = 0; n < f.cout; n++) {
    const x0 = (n % perRow) * width, y0 = Math.floor(n / perRow) * (kernel - 1 + gap);
    for (let ch = 0; ch < f.cin; ch++) for (let i = 0; i < taps; i++) {
      const g = f.shades[(n * f.cin + ch) * taps + i];
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.fillRect(x0 + ch * kernel + (i % f.size) * cell, y0 + Math.floor(i / f.size) * cell, cell, cell);
    }
  }
}
// rows the true classes, columns the predictions; a cell's colour is its share of the row,
// green on the diagonal, red for mistakes
const MAX_MATRIX = 30;
function drawConfusion(m) {
  window.qnn.confusion = m;
  const k = m.classes, names = m.class_names;
  $("confcap").textContent = `${m.split === "test" ? "test" : "validation"} images: ${m.caption}`;
  $("confworst").textContent = m.most_confused || "";
  const table = $("confusion"); table.innerHTML = "";
  if (k > MAX_MATRIX) { table.textContent = `(${k} classes: too many to draw)`; return; }
  const short = (n) => (n.length > 10 ? n.slice(0, 9) + "…" : n);
  const head = table.insertRow();
  head.appendChild(document.createElement("th"));
  for (let p = 0; p < k; p++) { const th = document.createElement("th"); th.textContent = short(names[p]); th.title = names[p]; head.appendChild(th); }
  for (let t = 0; t < k; t++) {
    const tr = table.insertRow(), th = document.createElement("th");
    th.textContent = short(names[t]); th.title = names[t]; tr.appendChild(th);
    let row = 0;
    for (let p = 0; p < k; p++) row += m.counts[t * k + p];
    for (let p = 0; p < k; p++) {
      const n = m.counts[t * k + p], td = tr.insertCell();
      td.title = `true ${names[t]}, predicted ${names[p]}: ${n} images`;
      if (n === 0) continue;
      td.textContent = n;
      const a = 0.15 + (0.85 * n) / Math.max(1, row);
      td.style.background = t === p ? `rgba(34,170,119,${a})` : `rgba(221,34,34,${a})`;
      if (t !== p) td.className = "mistake";
    }
  }
}
// ---- a model ready on arrival: the pretrained model shipped beside the page (made by
// scripts/page-model.sh), on the CPU backend, without touching the form
const READY_MODEL = "models/mnist-mini-4bit.safetensors";
async function loadReadyModel() {
  const note = $("modelnote");
  let bytes;
  try {
    const r = await fetch(READY_MODEL);
    if (!r.ok) throw `${r.status} ${r.statusText}`;
    bytes = new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    note.textContent = `No ready model here (${READY_MODEL}: ${e}): train one below, or load one.`;
    note.hidden = false;
    window.qnn.ready = { error: String(e) };
    return;
  }
  try {
    const m = JSON.parse(model_settings(bytes));
    // its network on the library's defaults; the run is only evaluated, never trained
    const s = { ...JSON.parse(default_settings()), ...m };
    const run = await WebRun.create(JSON.stringify(s), [], "cpu", bytes, "init", undefined);
    // a run of your own (or a loaded model) came first: it stays
    if (state.run || state.running) { run.free(); return; }
    state.run = run; state.ready = true;
    // the buttons give the ready model itself, named after its file
    state.shownModel = bytes; state.modelName = READY_MODEL.split("/").pop().replace(/\.safetensors$/, "");
    offerDownloads();
    const net = m.net ? "a layer list" : `the seed's blocks ${m.nfa}-${m.nfb}-${m.nfc}, ${m.bits}-bit ${m.nl}`;
    note.textContent = `Ready on arrival: a pretrained ${m.bits}-bit model (${net}; test error ${m.test_error.toFixed(2)}%), trained by scripts/page-model.sh. `
      + "Draw a digit, or click a test image to put it on the pad. Train your own below: it replaces this one.";
    note.hidden = false;
    await showGrid();
    await showViews(run, "test", "the ready model (pretrained by scripts/page-model.sh)");
    if (state.run !== run) return;
    status(`ready: the pretrained ${m.bits}-bit model (test error ${m.test_error.toFixed(2)}%); Start trains your own`);
    window.qnn.ready = { test_error: m.test_error, epoch: m.epoch };
  } catch (e) {
    note.textContent = `The ready model could not be used (${e}): train one below, or load one.`;
    note.hidden = false;
    window.qnn.ready = { error: String(e) };
  }
}

// ---- benchmark mode (?bench=1): the seed's CIFAR-10 example network, 1-64 ×3, 4-bit relu,
// batch 64, on generated CIFAR-shaped data, training images/s on the path the page picks
async function bench() {
  const n = Number(params.get("bench_images") || 256);
  const rec = 3073, files = [];
  for (const name of ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"]) {
    const b = new Uint8Array(rec * (name.startsWith("test") ? 64 : Math.ceil((n + 64) / 5)));
    for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
    for (let r = 0; r < b.length / rec; r++) b[r * rec] = r % 10;
    files.push([name, b]);
  }
  const s = { dataset: "CIFAR-10", bits: 4, quantized: true, nl: "relu", sym: false, nla: 1, nfa: 64, nlb: 1, nfb: 64, nlc: 1, nfc: 64,
    epochs: 1, lr: 0.001, lr_final: 0.0001, batch: 64, valid: 64, limit: n + 64, flip: true, seed: 1 };
  const [device, why] = await chooseDevice();
  $("device").textContent = "device: " + why;
  status("benchmark: the seed's CIFAR-10 network, batch 64…");
  const run = await WebRun.create(JSON.stringify(s), files, device, undefined, undefined, undefined);
  // ?profile=1: the seconds of each op family too (a clock read around every op)
  const profiled = params.get("profile") === "1" && run.set_profiling(true);
  const r = JSON.parse(await run.epoch(() => {}));
  window.qnn.bench = { device: run.device(), path: device, threads: cpu.threads, images_per_second: r.images_per_second, images: 2 * n,
    profile: profiled ? JSON.parse(run.take_profile()) : null };
  status(`benchmark: ${r.images_per_second.toFixed(2)} training images/s on ${run.device()}`);
  window.qnn.status = "done";
}

state.presets = JSON.parse(net_presets());
for (const p of state.presets) form.elements.preset.add(new Option(p.label, p.name));
// the defaults are the library's (RunSettings), as in `qnn train` and the window; the URL's
// parameters override them (`preset=NAME` with `arch=list` starts from that preset)
fill(Object.entries(JSON.parse(default_settings())));
fill(params);
if (params.get("net") && !params.get("arch")) form.elements.arch.value = "list";
if (params.get("preset") && !params.get("net")) usePreset(params.get("preset"));
if (isList() && form.elements.net.value.trim() === "") usePreset(state.presets[0]?.name);
showArch();
syncUrl();
updateSummary();
buttons();
const [dev, why] = await chooseDevice();
$("device").textContent = "device: " + why;
// an interrupted run first: its offer stands instead of a link's autostart
const offered = params.get("bench") !== "1" && await offerSaved();
// the ready model, unless the page benchmarks or starts a run of its own at once
if (params.get("bench") !== "1" && (params.get("autostart") !== "1" || offered)) await loadReadyModel();
window.qnn.status = "ready";
if (params.get("bench") === "1") bench().catch((e) => { message(String(e)); window.qnn.status = "error"; });
else if (params.get("autostart") === "1" && !offered) start();
