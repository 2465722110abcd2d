// The web page in headless Chromium (Debian's `chromium`, WebGPU on SwiftShader), driven by
// playwright-core: on both paths (WebGPU and the wasm CPU backend) a short run on mnist-mini
// must beat chance by far, its downloaded model must give `qnn eval` the same test error, a
// corrupt model file must give a message (and the page keep working), and nothing may throw.
// Needs the page built (scripts/web.sh --build) and the release binary (cargo build --release).
//
//   cd tests/web && npm ci && npm test
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { launch, root, serve, web } from "./harness.mjs";

const qnn = path.join(root, "target/release/qnn");
const out = path.join(root, "target/web-test");
fs.mkdirSync(out, { recursive: true });
assert.ok(fs.existsSync(path.join(web, "pkg/qnn_bg.wasm")), "build the page first: scripts/web.sh --build");
assert.ok(fs.existsSync(qnn), "build the binary first: cargo build --release");
const [server, base] = await serve();
const browser = await launch();
after(async () => { await browser.close(); server.close(); });

/** A page that records every uncaught error and console error. */
async function open(query) {
  const page = await browser.newPage();
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
    [await field("bits"), await field("nfa"), await field("nfb"), await field("epochs"), await field("lr"), await field("lr_final"), await field("batch"), await field("seed")],
    ["4", "32", "64", "10", "0.03", "3e-7", "64", "1234"]);
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
