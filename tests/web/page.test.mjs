// The web page in headless Chromium (Debian's `chromium`, WebGPU on SwiftShader), driven by
// playwright-core: on both paths (WebGPU and the wasm CPU backend) a short run on mnist-mini
// must beat chance by far, its downloaded model must give `qnn eval` the same test error (and
// its ONNX and QONNX downloads equal `qnn export`'s files), a
// corrupt model file must give a message (and the page keep working), your own pictures (a
// folder, a .zip; made by pictures.mjs) train with their class names shown, bad pictures are
// named, the ready model (web/models/, scripts/page-model.sh) scores a test image put on the
// pad and a drawn 1 with no training and fills the grid and the views (filters, activation
// histograms, confusion matrix, summary), a run replaces it and the views follow the run, a page
// without it says so and works as before, and nothing may throw.
// Needs the page built (scripts/web.sh --build) and the release binary (cargo build --release).
//
//   cd tests/web && npm ci && npm test
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { launch, root, serve, web } from "./harness.mjs";
import { pictureSet, png, writeFiles, zip } from "./pictures.mjs";

const qnn = path.join(root, "target/release/qnn");
const out = path.join(root, "target/web-test");
fs.mkdirSync(out, { recursive: true });
assert.ok(fs.existsSync(path.join(web, "pkg/qnn_bg.wasm")), "build the page first: scripts/web.sh --build");
assert.ok(fs.existsSync(qnn), "build the binary first: cargo build --release");
const [server, base] = await serve();
const browser = await launch();
after(async () => { await browser.close(); server.close(); });

/** A page that records every uncaught error and console error (`init`: a script run before
 * the page's own). */
async function open(query, init) {
  const page = await browser.newPage();
  if (init) await page.addInitScript(init);
  const errors = [];
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  await page.goto(base + "?" + query);
  await page.waitForFunction(() => window.qnn && window.qnn.status !== "loading", null, { timeout: 60_000 });
  return { page, errors };
}

async function trainAndCheck(device, query, floor) {
  const { page, errors } = await open(`autostart=1&device=${device}&${query}`);
  await page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 600_000, polling: 500 });
  const q = await page.evaluate(() => ({ status: window.qnn.status, state: window.qnn.state, device: window.qnn.device, errors: window.qnn.errors }));
  assert.equal(q.status, "done", `${device}: ${JSON.stringify(q)}`);
  assert.equal(q.device, device);
  const accuracy = 100 - q.state.test_error;
  assert.ok(accuracy >= floor, `${device}: test accuracy ${accuracy}% is below ${floor}%`);
  // the downloaded model is the file `qnn eval` reads, and measures the same
  const download = page.waitForEvent("download");
  await page.click("#download");
  const file = path.join(out, `${device}.safetensors`);
  await (await download).saveAs(file);
  const evaluated = JSON.parse(execFileSync(qnn, ["eval", "--model", file, "--device", "cpu", "--json"]).toString().trim().split("\n").pop());
  assert.ok(Math.abs(evaluated.test_error - q.state.test_error) <= 0.2,
    `${device}: qnn eval ${evaluated.test_error}% vs the page's ${q.state.test_error}%`);
  // "as ONNX" / "as QONNX" download the bytes `qnn export` writes from that model, made in wasm
  if (device === "cpu") {
    for (const [button, format, ext] of [["#download-onnx", "onnx", "onnx"], ["#download-qonnx", "qonnx", "qonnx.onnx"]]) {
      const exported = page.waitForEvent("download");
      await page.click(button);
      const d = await exported;
      assert.ok(d.suggestedFilename().endsWith(`.${ext}`), d.suggestedFilename());
      const fromPage = path.join(out, `cpu.page.${ext}`);
      await d.saveAs(fromPage);
      const fromCli = path.join(out, `cpu.cli.${ext}`);
      execFileSync(qnn, ["export", file, "--format", format, "--out", fromCli, "--overwrite"]);
      assert.ok(fs.readFileSync(fromPage).equals(fs.readFileSync(fromCli)),
        `${format}: the page's file differs from qnn export's`);
    }
  }
  await page.screenshot({ path: path.join(out, `page-${device}.png`), fullPage: true });
  assert.deepEqual(errors, [], `${device}: errors in the page`);
  console.log(`${device}: test accuracy ${accuracy.toFixed(2)}%, qnn eval agrees (${evaluated.test_error}%)`);
  await page.close();
}

test("the wasm CPU backend trains mnist-mini well above chance", async () => {
  await trainAndCheck("cpu", "epochs=2&limit=4000&valid=300&nfa=8&nfb=16&nfc=16&batch=32&lr=0.01&lr_final=0.001", 70);
});

test("WebGPU (SwiftShader) trains mnist-mini well above chance", async () => {
  await trainAndCheck("gpu", "epochs=1&limit=1100&valid=100&nfa=4&nfb=8&nfc=8&batch=64&lr=0.02&lr_final=0.002", 40);
});

test("a corrupt model file gives a message and the page keeps working", async () => {
  const { page, errors } = await open("device=cpu");
  // a page without parameters shows the library's defaults (RunSettings::new)
  const field = (name) => page.inputValue(`input[name=${name}]`);
  assert.deepEqual(
    [await field("bits"), await field("nfa"), await field("nfb"), await field("epochs"), await field("lr"), await field("lr_final"), await field("batch"), await field("seed"), await field("crop_pad")],
    ["4", "32", "64", "10", "0.03", "3e-7", "64", "1234", "0"]);
  assert.equal(await page.isChecked("input[name=flip]"), true);
  assert.equal(await page.isChecked("input[name=quantized]"), true);
  await page.setInputFiles("#model", { name: "broken.safetensors", mimeType: "application/octet-stream", buffer: Buffer.from("\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":") });
  await page.waitForFunction(() => document.getElementById("message").textContent.length > 0, null, { timeout: 30_000 });
  const msg = await page.textContent("#message");
  assert.match(msg, /broken\.safetensors: .*safetensors/);
  // a settings mistake is a message too, and the page still summarizes a good network after it
  await page.fill("input[name=bits]", "1");
  await page.waitForFunction(() => /relu with 1 bits/.test(document.getElementById("message").textContent));
  await page.fill("input[name=bits]", "4");
  await page.waitForFunction(() => /MACs/.test(document.getElementById("summary").textContent));
  assert.equal(await page.isEnabled("#start"), true);
  await page.screenshot({ path: path.join(out, "page-error.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a layer list: a preset, the summary as one types, a message naming the line and the layer", async () => {
  const { page, errors } = await open("device=cpu");
  const summary = () => page.textContent("#summary");
  assert.equal(await page.isVisible("textarea[name=net]"), false, "the seed's blocks come first");
  await page.check("input[name=arch][value=list]");
  assert.equal(await page.isVisible("textarea[name=net]"), true);
  assert.equal(await page.isVisible("input[name=nla]"), false);
  // picking a preset fills the text, and the summary shows its layers
  await page.selectOption("select[name=preset]", "lenet5-4bit");
  const text = await page.inputValue("textarea[name=net]");
  assert.match(text, /name = "lenet5-4bit"/);
  await page.waitForFunction(() => /conv1/.test(document.getElementById("summary").textContent));
  const s = await summary();
  for (const row of ["conv0", "conv1", "maxpool", "dense0", "dense1", "dense ", "16×10×10", "120×1×1", "84×1×1", "10×1×1", "MACs"]) {
    assert.ok(s.includes(row), `the summary lacks ${row}:\n${s}`);
  }
  assert.match(page.url(), /arch=list/);
  await page.screenshot({ path: path.join(out, "page-layer-list.png"), fullPage: true });
  // typing a mistake: the summary names the line of the layer and the layer
  await page.evaluate(() => {
    const t = document.querySelector("textarea[name=net]");
    const i = t.value.indexOf("kernel = 5") + "kernel = 5".length;
    t.focus(); t.setSelectionRange(i, i);
  });
  await page.keyboard.press("Backspace");
  await page.keyboard.type("4");
  const line = text.split("\n").findIndex((l) => l.startsWith("[[layer]]")) + 1;
  await page.waitForFunction(() => /kernel 4/.test(document.getElementById("summary").textContent));
  const refused = await summary();
  assert.match(refused, new RegExp(`layer list line ${line}: layer 1 \\(conv\\)`), refused);
  assert.match(await page.textContent("#message"), /layer 1 \(conv\)/);
  assert.equal(await page.inputValue("select[name=preset]"), "", "an edited list is no longer the preset");
  await page.screenshot({ path: path.join(out, "page-layer-list-refused.png"), fullPage: true });
  // a TOML mistake names its line too
  await page.keyboard.type(" x");
  await page.waitForFunction((l) => new RegExp(`layer list line ${l + 3}`).test(document.getElementById("summary").textContent), line);
  // mended, the summary is back
  await page.keyboard.press("Backspace"); await page.keyboard.press("Backspace"); await page.keyboard.press("Backspace");
  await page.keyboard.type("5");
  await page.waitForFunction(() => /conv1/.test(document.getElementById("summary").textContent));
  assert.equal(await page.textContent("#message"), "");
  // back to the seed's blocks: their summary
  await page.check("input[name=arch][value=seed]");
  await page.waitForFunction(() => /conv0 \(A\)/.test(document.getElementById("summary").textContent));
  assert.deepEqual(errors, []);
  await page.close();
});

// the MLP preset, briefly: a finite loss, the model named after the network, read by `qnn eval`,
// and loaded back into the page with its layer list
async function trainLayerList(device) {
  const { page, errors } = await open(`device=${device}&epochs=1&limit=600&valid=100&batch=50&lr=0.01&lr_final=0.001`);
  await page.check("input[name=arch][value=list]");
  await page.selectOption("select[name=preset]", "mlp-2bit");
  await page.waitForFunction(() => /dense1/.test(document.getElementById("summary").textContent));
  await page.click("#start");
  await page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 600_000, polling: 500 });
  const q = await page.evaluate(() => ({ status: window.qnn.status, state: window.qnn.state, reports: window.qnn.reports, device: window.qnn.device, errors: window.qnn.errors }));
  assert.equal(q.status, "done", `${device}: ${JSON.stringify(q)}`);
  assert.equal(q.device, device);
  assert.equal(q.reports.length, 1);
  const r = q.reports[0];
  for (const k of ["train_loss", "val_loss", "val_error", "test_error"]) assert.ok(Number.isFinite(r[k]), `${device}: ${k} ${r[k]}`);
  const download = page.waitForEvent("download");
  await page.click("#download");
  const d = await download;
  assert.equal(d.suggestedFilename(), "mnist-mini_mlp-2bit.safetensors");
  const file = path.join(out, `${device}-mlp-2bit.safetensors`);
  await d.saveAs(file);
  const evaluated = JSON.parse(execFileSync(qnn, ["eval", "--model", file, "--device", "cpu", "--json"]).toString().trim().split("\n").pop());
  assert.ok(Math.abs(evaluated.test_error - q.state.test_error) <= 0.2,
    `${device}: qnn eval ${evaluated.test_error}% vs the page's ${q.state.test_error}%`);
  assert.deepEqual(errors, [], `${device}: errors in the page`);
  await page.close();
  // a fresh page loads it to evaluate: the layer list comes back in the text
  const again = await open("device=cpu");
  await again.page.setInputFiles("#model", file);
  await again.page.waitForFunction(() => window.qnn.evaluation || document.getElementById("message").textContent, null, { timeout: 120_000 });
  assert.equal(await again.page.textContent("#message"), "");
  assert.equal(await again.page.isChecked("input[name=arch][value=list]"), true);
  assert.match(await again.page.inputValue("textarea[name=net]"), /name = "mlp-2bit"/);
  assert.match(await again.page.textContent("#summary"), /dense1/);
  const e = await again.page.evaluate(() => window.qnn.evaluation);
  assert.ok(Math.abs(e.error - q.state.test_error) <= 0.2, `${device}: evaluated ${e.error}% vs ${q.state.test_error}%`);
  assert.deepEqual(again.errors, []);
  await again.page.close();
  console.log(`${device}: the MLP layer list, train loss ${r.train_loss.toFixed(4)}, test error ${q.state.test_error.toFixed(2)}%`);
}

test("the wasm CPU backend trains a layer list (the MLP preset)", async () => {
  await trainLayerList("cpu");
});

test("WebGPU (SwiftShader) trains a layer list (the MLP preset)", async () => {
  await trainLayerList("gpu");
});

const captions = (page) => page.$$eval("#grid figcaption", (els) => els.map((e) => e.textContent));

// ---- the ready model and the views

/** Waits until the page's ready model has filled the grid and the views (or failed). */
async function ready(page) {
  await page.waitForFunction(() => window.qnn.ready, null, { timeout: 60_000 });
  const r = await page.evaluate(() => window.qnn.ready);
  assert.ok(!r.error, `the ready model: ${r.error}`);
  return r;
}

/** The views as drawn: the filters' caption and how many of their pixels are not blank, the
 * histograms' captions and bars, the confusion table's counts. */
function views(page) {
  return page.evaluate(() => {
    const f = document.getElementById("filters");
    let inked = 0;
    if (f.width > 0 && f.height > 0) {
      const d = f.getContext("2d").getImageData(0, 0, f.width, f.height).data;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) inked++;
    }
    const hists = [...document.querySelectorAll("#hists .hist")].map((h) => {
      const c = h.querySelector("canvas"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let blue = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 150 && d[i] < 100) blue++;
      return { caption: h.firstChild.textContent, blue };
    });
    const rows = [...document.querySelectorAll("#confusion tr")].slice(1);
    const cells = rows.map((r) => [...r.querySelectorAll("td")].map((td) => Number(td.textContent || 0)));
    return {
      filters: document.getElementById("filterscap").textContent, inked, hists,
      confusion: { caption: document.getElementById("confcap").textContent, heads: [...document.querySelectorAll("#confusion tr:first-child th")].map((th) => th.textContent),
        cells, mistakes: document.querySelectorAll("#confusion td.mistake").length },
      model: document.getElementById("modelsummary").textContent,
      probe: window.qnn.probe, matrix: window.qnn.confusion,
    };
  });
}

test("on arrival, the ready model scores test images and a drawn 1 on the pad, fills the grid and draws the views", async () => {
  const { page, errors } = await open("device=cpu");
  const r = await ready(page);
  // the model of scripts/page-model.sh: 16-32-32 filters, 4-bit relu, about 3 % test error
  assert.ok(r.test_error < 6, `the ready model's test error ${r.test_error}%`);
  assert.match(await page.textContent("#modelnote"), /pretrained 4-bit model .*scripts\/page-model\.sh/);
  // the form keeps the library's defaults: the ready model is not a setting
  assert.equal(await page.inputValue("input[name=nfa]"), "32");
  // the grid: 48 test images with the ready model's predictions, nearly all right
  const caps = await captions(page);
  assert.equal(caps.length, 48);
  const wrong = caps.filter((c) => { const [, p, t] = c.match(/^(\d) \(true (\d)\)$/); return p !== t; }).length;
  assert.ok(wrong <= 6, `the ready model gets ${wrong} of 48 grid images wrong`);
  // a real test image put on the pad (a click on it in the grid) is scored as the grid scores
  // it, and its true label wins for nearly all of the first ten
  let right = 0;
  for (let i = 0; i < 10; i++) {
    await page.evaluate(() => { window.qnn.pad = null; });
    await page.click(`#grid figure:nth-child(${i + 1})`);
    await page.waitForFunction(() => window.qnn.pad, null, { timeout: 30_000 });
    const pad = await page.evaluate(() => window.qnn.pad);
    const [, predicted, truth] = caps[i].match(/^(\d) \(true (\d)\)$/);
    assert.equal(pad.name, predicted, `grid image ${i}: the pad says ${pad.name}, the grid ${caps[i]}`);
    if (pad.name === truth) right++;
  }
  assert.ok(right >= 9, `the pad gets ${right} of 10 test images right`);
  // a drawn vertical stroke is a 1, with no training
  await page.click("#clear");
  await page.evaluate(() => { window.qnn.pad = null; });
  const box = await page.locator("#pad").boundingBox();
  await page.mouse.move(box.x + 140, box.y + 50); await page.mouse.down();
  await page.mouse.move(box.x + 140, box.y + 230, { steps: 12 }); await page.mouse.up();
  await page.waitForFunction(() => window.qnn.pad, null, { timeout: 30_000 });
  const stroke = await page.evaluate(() => window.qnn.pad);
  assert.equal(stroke.name, "1", `a vertical stroke scored as ${stroke.name}: ${stroke.scores.map((v) => v.toFixed(2))}`);
  assert.match(await page.textContent("#scores"), /1:/);
  // the views, from qnn::inspect: the 16 first-layer filters at the 4-bit levels, drawn
  const v = await views(page);
  assert.match(v.filters, /^16 filters × 1 channels, levels \{[^}]+\}: \d+ used$/, v.filters);
  assert.ok(v.inked >= 16 * 9, `the filters' canvas has ${v.inked} drawn pixels`);
  assert.equal(v.probe.filters.shades.length, 16 * 9);
  // a histogram per conv layer (3), each over the 8 levels of 4-bit relu, with bars
  assert.equal(v.hists.length, 3, JSON.stringify(v.hists));
  for (const h of v.hists) {
    assert.match(h.caption, /^conv\d \([ABC]\): [1-8] of 8 levels used$/, h.caption);
    assert.ok(h.blue > 0, `${h.caption}: no bars`);
  }
  // the confusion matrix on every test image: digits as headers, counts that sum to the
  // images evaluated, the diagonal holding nearly all, mistakes marked
  assert.equal(v.matrix.split, "test");
  assert.deepEqual(v.confusion.heads, ["", ..."0123456789"]);
  const sum = v.confusion.cells.flat().reduce((a, b) => a + b, 0);
  assert.equal(sum, 1000, "mnist-mini has 1,000 test images");
  assert.equal(v.matrix.total, 1000);
  const diagonal = v.confusion.cells.reduce((a, row, t) => a + row[t], 0);
  assert.ok(Math.abs(100 * (1 - diagonal / sum) - r.test_error) < 0.01, `the matrix's error ${100 * (1 - diagonal / sum)}% vs the model's ${r.test_error}%`);
  assert.ok(v.confusion.mistakes > 0);
  assert.match(v.confusion.caption, /error on 1000 images/);
  // the model summary with the energy per inference: the table's total, and a line of its own
  assert.match(v.model, /4\.205 µJ per inference/);
  assert.match(await page.textContent("#energy"), /^4\.205 µJ per inference \(45 nm model\) · 17,118 parameters/);
  // the ready model can be taken away on arrival: "Download" gives its very file, "as ONNX" the
  // bytes `qnn export` writes from it
  const given = page.waitForEvent("download");
  await page.click("#download");
  const file = path.join(out, "ready-download.safetensors");
  await (await given).saveAs(file);
  assert.equal((await given).suggestedFilename(), "mnist-mini-4bit.safetensors");
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(path.join(web, "models/mnist-mini-4bit.safetensors"))),
    "the downloaded ready model is not the shipped file");
  const onnx = page.waitForEvent("download");
  await page.click("#download-onnx");
  await (await onnx).saveAs(path.join(out, "ready-download.onnx"));
  execFileSync(qnn, ["export", file, "--format", "onnx", "--out", path.join(out, "ready-export.onnx"), "--overwrite"]);
  assert.ok(fs.readFileSync(path.join(out, "ready-download.onnx")).equals(fs.readFileSync(path.join(out, "ready-export.onnx"))),
    "the page's ONNX of the ready model differs from qnn export's");
  await page.screenshot({ path: path.join(out, "page-ready.png"), fullPage: true });
  assert.deepEqual(errors, []);
  console.log(`the ready model: test error ${r.test_error}%, ${wrong} of 48 grid images wrong, the pad ${right} of 10, a stroke is a 1`);
  await page.close();
});

test("without the ready model (missing, or a page opened from file://) the page says so and works as before", async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  // the browser's own line about the missing file is expected; nothing else may go wrong
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`); });
  await page.route("**/models/mnist-mini-4bit.safetensors", (r) => r.fulfill({ status: 404, body: "" }));
  await page.goto(base + "?device=cpu&epochs=1&limit=600&valid=100&nfa=4&nfb=8&nfc=8&batch=32&lr=0.01&lr_final=0.001");
  await page.waitForFunction(() => window.qnn && window.qnn.status === "ready", null, { timeout: 60_000 });
  assert.match(await page.textContent("#modelnote"), /No ready model here \(models\/mnist-mini-4bit\.safetensors: 404/);
  assert.equal(await page.isVisible("#modelnote"), true);
  assert.equal((await captions(page)).length, 0, "no model: an empty grid");
  assert.equal(await page.textContent("#message"), "");
  // training works as before, and fills the grid and the views
  await page.click("#start");
  await page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 300_000, polling: 500 });
  assert.equal(await page.evaluate(() => window.qnn.status), "done");
  assert.equal((await captions(page)).length, 48);
  assert.match((await views(page)).filters, /^4 filters/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a short run replaces the ready model; the views follow it during and after each epoch", async () => {
  const { page, errors } = await open("device=cpu&epochs=2&limit=3000&valid=200&nfa=4&nfb=8&nfc=8&batch=32&lr=0.01&lr_final=0.001");
  await ready(page);
  const before = await views(page);
  assert.match(before.filters, /^16 filters/);
  // no curves before a run: a caption says when they come; after the run its two epochs are drawn
  assert.equal(await page.isVisible("#curvescap"), true);
  await page.click("#start");
  await page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 300_000, polling: 500 });
  const q = await page.evaluate(() => ({ status: window.qnn.status, errors: window.qnn.errors, probes: window.qnn.epochProbes }));
  assert.equal(q.status, "done", JSON.stringify(q));
  // probes came during the epochs (between steps), not only after them
  assert.ok(q.probes >= 1, `${q.probes} probes during the epochs`);
  assert.equal(await page.isVisible("#modelnote"), false, "the ready model's note is gone");
  assert.equal(await page.isVisible("#curvescap"), false, "the curves' caption stays after the run");
  assert.equal(await page.locator("#epochs tbody tr").count(), 2);
  const v = await views(page);
  // the run's own network: 4 first-layer filters, its histograms, the matrix on its 200
  // validation images
  assert.match(v.filters, /^4 filters × 1 channels, levels/, v.filters);
  assert.ok(v.inked >= 4 * 9);
  assert.equal(v.hists.length, 3);
  assert.equal(v.matrix.split, "valid");
  assert.equal(v.confusion.cells.flat().reduce((a, b) => a + b, 0), 200);
  assert.match(v.confusion.caption, /^validation images: .*error on 200 images/);
  assert.match(v.model, /conv0 \(A\) \+ bn \+ act\s+4×28×28/);
  // the grid shows the new model's predictions
  assert.equal((await captions(page)).length, 48);
  await page.screenshot({ path: path.join(out, "page-trained-views.png"), fullPage: true });
  assert.deepEqual(errors, []);
  console.log(`a short run: ${q.probes} probes during its epochs; the views show its 4 filters`);
  await page.close();
});

// ---- your own pictures

/** Waits until the page has decoded a set of pictures (resolves to its info) or shows a message. */
async function pictures(page) {
  await page.waitForFunction(() => window.qnn.pictures || document.getElementById("message").textContent, null, { timeout: 60_000 });
  return page.evaluate(() => window.qnn.pictures);
}

test("your own pictures: a chosen folder (grey) trains; its classes name the report, the grid and the pad; qnn eval agrees", async () => {
  const dir = writeFiles(path.join(out, "pictures-grey"), pictureSet("shapes", { per: 20 }));
  const { page, errors } = await open("device=cpu&epochs=4&batch=8&nfa=8&nfb=8&nfc=8&lr=0.01&lr_final=0.001");
  // the folder input, as a person choosing the folder "shapes" (webkitRelativePath shapes/…)
  await page.setInputFiles("#folder", path.join(dir, "shapes"));
  const info = await pictures(page);
  assert.equal(await page.textContent("#message"), "");
  assert.deepEqual([info.name, info.classes, info.class_names, info.chw, info.images, info.train + info.valid + info.test],
    ["shapes", 3, ["horizontal", "square", "vertical"], [1, 16, 16], 60, 60]);
  const report = await page.textContent("#pictures");
  for (const words of ["shapes", "60 images", "3 classes", "1×16×16", "horizontal, square, vertical"]) assert.ok(report.includes(words), `the report lacks ${words}: ${report}`);
  assert.equal(await page.inputValue("select[name=dataset]"), "folder");
  // the network follows the pictures: 3 scores from 16×16 inputs
  await page.waitForFunction(() => /dense \+ bn\s+3×1×1/.test(document.getElementById("summary").textContent));
  // crop padding reaches the run's settings: too much is the library's refusal
  await page.fill("input[name=crop_pad]", "16");
  await page.waitForFunction(() => /crop padding 16: must be/.test(document.getElementById("message").textContent));
  await page.fill("input[name=crop_pad]", "2");
  await page.waitForFunction(() => document.getElementById("message").textContent === "");
  assert.match(page.url(), /crop_pad=2/);
  assert.match(page.url(), /dataset=folder/);
  await page.click("#start");
  await page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 300_000, polling: 500 });
  const q = await page.evaluate(() => ({ status: window.qnn.status, state: window.qnn.state, errors: window.qnn.errors }));
  assert.equal(q.status, "done", JSON.stringify(q));
  assert.match(await page.textContent("#status"), /test error \d+\.\d\d%/);
  // three easy classes: well below chance (67 % error) after four short epochs
  assert.ok(q.state.test_error < 50, `test error ${q.state.test_error}%`);
  // the grid names the classes: every test picture, "predicted (true actual)"
  const caps = await captions(page);
  assert.equal(caps.length, info.test);
  for (const c of caps) assert.match(c, /^(horizontal|square|vertical) \(true (horizontal|square|vertical)\)$/);
  // grey pictures: the pad is there, and a stroke is scored by class name
  assert.equal(await page.isVisible("#pad"), true);
  assert.equal(await page.isVisible("#padnote"), false);
  await page.locator("#pad").scrollIntoViewIfNeeded();
  const box = await page.locator("#pad").boundingBox();
  await page.mouse.move(box.x + 60, box.y + 140); await page.mouse.down();
  await page.mouse.move(box.x + 220, box.y + 140, { steps: 8 }); await page.mouse.up();
  await page.waitForFunction(() => document.getElementById("scores").textContent.length > 0);
  const scores = await page.textContent("#scores");
  for (const name of info.class_names) assert.ok(scores.includes(`${name}:`), `the pad's scores lack ${name}: ${scores}`);
  // the model is named after the set, and `qnn eval` on the same folder measures the same test error
  const download = page.waitForEvent("download");
  await page.click("#download");
  const d = await download;
  assert.match(d.suggestedFilename(), /^shapes_.*\.safetensors$/);
  const file = path.join(out, "shapes.safetensors");
  await d.saveAs(file);
  const evaluated = JSON.parse(execFileSync(qnn, ["eval", "--model", file, "--data-dir", path.join(dir, "shapes"), "--device", "cpu", "--json"]).toString().trim().split("\n").pop());
  assert.ok(Math.abs(evaluated.test_error - q.state.test_error) <= 0.2, `qnn eval ${evaluated.test_error}% vs the page's ${q.state.test_error}%`);
  await page.screenshot({ path: path.join(out, "page-pictures-grey.png"), fullPage: true });
  assert.deepEqual(errors, []);
  console.log(`a folder of grey pictures: test error ${q.state.test_error.toFixed(2)}%, qnn eval agrees`);
  await page.close();
});

test("your own pictures: a .zip of RGB pictures trains on WebGPU; the pad gives way to a note", async () => {
  const { page, errors } = await open("device=gpu&epochs=2&batch=8&nfa=4&nfb=8&nfc=8&lr=0.01&lr_final=0.001");
  await page.setInputFiles("#zip", { name: "colours.zip", mimeType: "application/zip", buffer: zip(pictureSet("colours", { per: 12, rgb: true })) });
  const info = await pictures(page);
  assert.equal(await page.textContent("#message"), "");
  assert.deepEqual([info.name, info.class_names, info.chw, info.images], ["colours", ["blue", "green", "red"], [3, 16, 16], 36]);
  assert.match(await page.textContent("#pictures"), /3×16×16 \(RGB\)/);
  await page.click("#start");
  await page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 300_000, polling: 500 });
  const q = await page.evaluate(() => ({ status: window.qnn.status, state: window.qnn.state, device: window.qnn.device, errors: window.qnn.errors }));
  assert.equal(q.status, "done", JSON.stringify(q));
  assert.equal(q.device, "gpu");
  assert.ok(Number.isFinite(q.state.test_error), JSON.stringify(q.state));
  assert.match(await page.textContent("#status"), /test error \d+\.\d\d%/);
  const caps = await captions(page);
  assert.equal(caps.length, info.test);
  for (const c of caps) assert.match(c, /^(blue|green|red) \(true (blue|green|red)\)$/);
  assert.equal(await page.isVisible("#pad"), false, "colour pictures: no draw pad");
  assert.equal(await page.isVisible("#padnote"), true);
  // the views on WebGPU: RGB filters (3 channels each), the matrix headed by the class names
  // and counting the validation images
  const v = await views(page);
  assert.match(v.filters, /^4 filters × 3 channels, levels/, v.filters);
  assert.ok(v.inked >= 4 * 3 * 9);
  assert.deepEqual(v.confusion.heads, ["", "blue", "green", "red"]);
  assert.equal(v.confusion.cells.flat().reduce((a, b) => a + b, 0), info.valid);
  await page.screenshot({ path: path.join(out, "page-pictures-rgb.png"), fullPage: true });
  assert.deepEqual(errors, []);
  console.log(`a .zip of RGB pictures on WebGPU: test error ${q.state.test_error.toFixed(2)}%`);
  await page.close();
});

test("your own pictures: a single class, an undecodable picture and a non-zip are named; the page keeps working", async () => {
  const { page, errors } = await open("device=cpu");
  const msg = () => page.textContent("#message");
  const waitMessage = (re) => page.waitForFunction((src) => new RegExp(src).test(document.getElementById("message").textContent), re.source, { timeout: 60_000 });
  // one class folder: the library's refusal, naming the set and the class
  const one = writeFiles(path.join(out, "pictures-one"), pictureSet("cats", { per: 3 }).filter(([p]) => p.startsWith("cats/square/")));
  await page.setInputFiles("#folder", path.join(one, "cats"));
  await waitMessage(/a single class \('square'\)/);
  assert.equal(await page.evaluate(() => window.qnn.pictures), undefined, "nothing was loaded");
  // a truncated PNG in a .zip: named by its path; "skip unreadable pictures" then skips and lists it
  const files = pictureSet("colours", { per: 10, rgb: true });
  files[1][1] = files[1][1].subarray(0, 60);
  await page.setInputFiles("#zip", { name: "colours.zip", mimeType: "application/zip", buffer: zip(files) });
  await waitMessage(/red\/001\.png/);
  assert.match(await msg(), /skip unreadable pictures/);
  await page.check("#skipbad");
  await page.waitForFunction(() => window.qnn.pictures, null, { timeout: 60_000 });
  const info = await page.evaluate(() => window.qnn.pictures);
  assert.equal(info.images, 29);
  assert.equal(info.skipped.length, 1);
  assert.match(info.skipped[0][0], /red\/001\.png/);
  assert.match(await page.textContent("#pictures"), /skipped .*red\/001\.png/);
  assert.equal(await msg(), "");
  // not a zip at all
  await page.setInputFiles("#zip", { name: "notes.zip", mimeType: "application/zip", buffer: Buffer.from("just text") });
  await waitMessage(/notes\.zip: not a \.zip/);
  // the set decoded before is kept, and the page still summarizes and can start
  assert.equal((await page.evaluate(() => window.qnn.pictures)).name, "colours");
  assert.match(await page.textContent("#summary"), /MACs/);
  assert.equal(await page.isEnabled("#start"), true);
  await page.screenshot({ path: path.join(out, "page-pictures-bad.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a dropped folder is read through every batch of its directory reader", async () => {
  const { page, errors } = await open("device=cpu");
  // Chromium's readEntries answers at most 100 entries a call: a fake folder of 250 files
  // answering 100 at a time must come back whole, with paths below the dropped folder
  const paths = await page.evaluate(async () => {
    const file = (dir, name) => ({ isFile: true, isDirectory: false, name, fullPath: `${dir}/${name}`, file: (ok) => ok(new File([name], name)) });
    const folder = (path, children) => ({
      isFile: false, isDirectory: true, name: path.split("/").pop(), fullPath: path,
      createReader() { let i = 0; return { readEntries(ok) { const b = children.slice(i, i + 100); i += b.length; setTimeout(() => ok(b)); } }; },
    });
    const cats = folder("/pets/cats", Array.from({ length: 250 }, (_, i) => file("/pets/cats", `${i}.png`)));
    const dogs = folder("/pets/dogs", [file("/pets/dogs", "a.png")]);
    const got = await window.qnn.walkEntries([folder("/pets", [cats, dogs])]);
    return got.map(([p]) => p);
  });
  assert.equal(paths.length, 251);
  assert.equal(new Set(paths).size, 251);
  assert.ok(paths.includes("pets/cats/249.png") && paths.includes("pets/dogs/a.png"), paths.slice(-3).join(" "));
  assert.deepEqual(errors, []);
  await page.close();
});

// ---- a run that survives a reload (IndexedDB)

// small enough for a few seconds an epoch on the wasm CPU path
const RESUMABLE = "device=cpu&epochs=3&limit=1000&valid=200&nfa=4&nfb=8&nfc=8&batch=32&lr=0.01&lr_final=0.001";
/** An epoch's reports without their timings: wall time differs between runs, nothing else may. */
const untimed = (history) => history.map(({ seconds, images_per_second, ...r }) => r);
const finished = (page) => page.waitForFunction(() => ["done", "error"].includes(window.qnn.status), null, { timeout: 300_000, polling: 200 });
/** After a reload: the page has read its saved run (and loaded the ready model). */
const reloaded = async (page) => {
  await page.reload();
  await page.waitForFunction(() => window.qnn && window.qnn.status !== "loading", null, { timeout: 60_000 });
};
const offer = (page) => page.evaluate(() => window.qnn.resumeOffer);
const outcome = (page) => page.evaluate(() => ({ status: window.qnn.status, state: window.qnn.state, history: window.qnn.history,
  reports: window.qnn.reports, saved: window.qnn.savedEpochs, storage: window.qnn.storage, errors: window.qnn.errors,
  rows: document.querySelectorAll("#epochs tbody tr").length }));
/** The page's IndexedDB record (`key`, default the interrupted run): `op` "get" (its epoch and
 * state size, or null), "copy" (to `spare`), "restore" (`spare` back, `patch` on its settings)
 * or "damage" (a record whose state is not a training state). */
function record(page, op, patch) {
  return page.evaluate(([op, patch]) => new Promise((resolve, reject) => {
    const open = indexedDB.open("qnn", 1);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction("runs", "readwrite"), store = tx.objectStore("runs");
      let result = null;
      const get = store.get(op === "restore" ? "spare" : "interrupted");
      get.onsuccess = () => {
        const r = get.result;
        if (op === "get") result = r ? { epoch: r.epoch, bytes: r.state.length } : null;
        if (op === "copy") store.put(r, "spare");
        if (op === "restore") store.put({ ...r, settings: { ...r.settings, ...patch } }, "interrupted");
        if (op === "damage") store.put({ ...r, state: new Uint8Array([1, 2, 3, 4]) }, "interrupted");
      };
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
    };
  }), [op, patch || {}]);
}

test("a run interrupted by a reload resumes and ends exactly as the uninterrupted run; a finished run is not offered", async () => {
  // the run uninterrupted
  const a = await open(RESUMABLE);
  await ready(a.page);
  await a.page.click("#start");
  await finished(a.page);
  const whole = await outcome(a.page);
  assert.equal(whole.status, "done", JSON.stringify(whole));
  assert.equal(whole.storage, "indexeddb");
  assert.equal(whole.history.length, 3);
  assert.equal(whole.saved, 2, "epochs 1 and 2 are kept; the last one ends the run");
  assert.match(await a.page.textContent("#keepnote"), /a reload offers to resume it/);
  // finished: the record is gone, and a reload offers nothing
  assert.equal(await record(a.page, "get"), null);
  await reloaded(a.page);
  assert.equal(await offer(a.page), null);
  assert.equal(await a.page.isVisible("#resume"), false);
  assert.deepEqual(a.errors, []);
  await a.page.close();

  // the same run, the page reloaded once epoch 1 is kept
  const b = await open(RESUMABLE);
  await ready(b.page);
  await b.page.click("#start");
  await b.page.waitForFunction(() => window.qnn.savedEpochs >= 1, null, { timeout: 300_000, polling: 50 });
  await reloaded(b.page);
  const o = await offer(b.page);
  assert.ok(o && o.epoch >= 1 && o.epoch < 3, `the offer: ${JSON.stringify(o)}`);
  assert.match(await b.page.textContent("#resume"), new RegExp(`^\\s*A run was interrupted after epoch ${o.epoch} of 3 \\(mnist-mini, blocks 1×4 / 1×8 / 1×8, 4-bit relu, batch 32.*seed 1234.*1000 training images.*CPU \\(wasm\\).*\\)\\.\\s*Resume\\s*Discard\\s*$`, "s"));
  // the ready model stands until the person resumes
  assert.equal(await b.page.isVisible("#modelnote"), true);
  // in sight, though the reload kept the page scrolled down to the training section
  const seen = await b.page.evaluate(() => { const r = document.getElementById("resume").getBoundingClientRect(); return [r.top, r.bottom, innerHeight]; });
  assert.ok(seen[0] >= 0 && seen[1] <= seen[2], `the offer is out of sight: ${seen}`);
  await b.page.screenshot({ path: path.join(out, "page-resume.png") });
  await b.page.click("#resumerun");
  await finished(b.page);
  const resumed = await outcome(b.page);
  assert.equal(resumed.status, "done", JSON.stringify(resumed));
  assert.equal(await b.page.isVisible("#resume"), false);
  assert.equal(await b.page.isVisible("#modelnote"), false, "the resumed run replaced the ready model");
  // only the epochs after the saved ones trained here; the chart and table hold all three
  assert.deepEqual(resumed.reports.map((r) => r.epoch), [1, 2, 3].slice(o.epoch));
  assert.equal(resumed.rows, 3);
  // the same result: every epoch's numbers, the best epoch and its test error, bit for bit
  assert.deepEqual(untimed(resumed.history), untimed(whole.history));
  assert.deepEqual(resumed.state, whole.state);
  assert.equal(await record(b.page, "get"), null, "the finished run's record is deleted");
  await reloaded(b.page);
  assert.equal(await offer(b.page), null);
  assert.deepEqual(b.errors, []);
  await b.page.close();
  console.log(`resumed after epoch ${o.epoch} of 3: test error ${resumed.state.test_error}% (best epoch ${resumed.state.best_epoch}), `
    + `as uninterrupted (${whole.state.test_error}%); validation errors ${resumed.history.map((r) => r.val_error).join(", ")}`);
});

test("Discard removes the offer; a stale or damaged record is named and discarded; without IndexedDB a run trains as before", async () => {
  const { page, errors } = await open(RESUMABLE);
  await ready(page);
  await page.click("#start");
  await page.waitForFunction(() => window.qnn.savedEpochs >= 1, null, { timeout: 300_000, polling: 50 });
  await reloaded(page);
  assert.ok(await offer(page));
  await record(page, "copy");
  await page.click("#discardrun");
  await page.waitForFunction(() => /discarded/.test(document.getElementById("status").textContent));
  assert.equal(await page.isVisible("#resume"), false);
  assert.equal(await record(page, "get"), null);
  await reloaded(page);
  assert.equal(await offer(page), null);
  // a stale record (another seed than its state's, as from an older page): refused by the
  // library with the reason, then discarded; the page keeps its ready model
  await record(page, "restore", { seed: 7 });
  await reloaded(page);
  assert.ok(await offer(page));
  await page.click("#resumerun");
  await finished(page);
  assert.equal(await page.evaluate(() => window.qnn.status), "error");
  assert.match(await page.textContent("#message"), /could not be resumed, so it was discarded: .*seed: saved 1234, now 7/);
  assert.equal(await record(page, "get"), null);
  assert.equal(await page.isVisible("#modelnote"), true, "the ready model is still the page's");
  assert.equal(await page.isEnabled("#start"), true);
  // a damaged record: a message on load, no offer, the record deleted
  await record(page, "restore");
  await record(page, "damage");
  await reloaded(page);
  assert.equal(await offer(page), null);
  assert.match(await page.textContent("#message"), /A saved run could not be read, so it was discarded: the saved run's state: /);
  assert.equal(await record(page, "get"), null);
  assert.deepEqual(errors, []);
  await page.close();

  // no IndexedDB (some private modes): a run trains as before, and the page says a reload loses it
  const off = await open("device=cpu&epochs=2&limit=600&valid=100&nfa=4&nfb=8&nfc=8&batch=50&lr=0.01&lr_final=0.001",
    () => Object.defineProperty(window, "indexedDB", { get() { throw new DOMException("no storage here", "SecurityError"); } }));
  await ready(off.page);
  await off.page.click("#start");
  await finished(off.page);
  const q = await outcome(off.page);
  assert.equal(q.status, "done", JSON.stringify(q));
  assert.equal(q.storage, "none");
  assert.equal(q.saved, 0);
  assert.deepEqual(q.errors, []);
  assert.match(await off.page.textContent("#keepnote"), /A reload loses this run: this browser keeps no storage/);
  assert.deepEqual(off.errors, []);
  await off.page.close();
});
