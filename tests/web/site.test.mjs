// The page as a static site and the npm package, in headless Chromium (issue 23):
// - `scripts/web.sh --dist` served with the COOP/COEP headers (scripts/serve.py, as
//   `scripts/web.sh` serves) is cross-origin isolated on arrival, with no service worker;
// - served by a plain static server (no headers), web/coi-serviceworker.js registers, reloads
//   the page once and makes it cross-origin isolated (the threaded module's workers running), and a
//   second visit is isolated at once;
// - with service workers blocked the page runs without isolation, without an error, and where
//   the worker's headers do not isolate it, it reloads once only (no loop);
// - cross-origin isolated, the page loads the threaded module (pkg-mt/: a worker per core beside
//   the page's thread) and trains on the CPU with every core; not isolated, the single-threaded
//   pkg/, and says so;
// - `scripts/web.sh --npm` writes an npm package (package.json, qnn.js, qnn_bg.wasm, qnn.d.ts
//   declaring WebRun), and web/examples/ten-lines.html trains mnist-mini through it, and
//   through the page's own pkg/, to a test error far below chance; its "qnn/threads" trains with
//   every core in a cross-origin isolated page.
// Needs `scripts/web.sh --dist target/web-test/dist --npm target/web-test/npm` (web-test.sh).
//
//   cd tests/web && node --test site.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launch, root } from "./harness.mjs";

const dist = path.join(root, "target/web-test/dist");
const npm = path.join(root, "target/web-test/npm");
for (const d of [dist, npm]) {
  assert.ok(fs.existsSync(d), `make it first: scripts/web.sh --dist target/web-test/dist --npm target/web-test/npm (no ${d})`);
}
const browser = await launch();
const servers = [];
after(async () => {
  await browser.close();
  for (const s of servers) s.kill();
});

/** scripts/serve.py on DIR at a free port (plain: without the COOP/COEP headers); its base URL. */
async function serve(dir, { plain = false } = {}) {
  const child = spawn("python3", [path.join(root, "scripts/serve.py"), "--port", "0", ...(plain ? ["--plain"] : []), dir],
    { env: { ...process.env, QUIET: "1" }, stdio: ["ignore", "pipe", "inherit"] });
  servers.push(child);
  return await new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => resolve(d.toString().split("\n")[0].trim()));
    child.once("exit", (code) => reject(new Error(`scripts/serve.py exited with ${code}`)));
  });
}

/** A page in a fresh context (no service worker from an earlier test) that records errors. */
async function open(options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  return { context, page, errors };
}

const ready = () => window.qnn && window.qnn.status === "ready";
// how the document came: "navigate", or "reload" (the service worker's reload)
const isolation = () => ({
  came: performance.getEntriesByType("navigation")[0].type,
  isolated: window.crossOriginIsolated,
  sab: typeof SharedArrayBuffer,
  controller: navigator.serviceWorker?.controller?.scriptURL ?? null,
});

test("the --dist folder has the service worker, loaded first in the page's <head>", () => {
  for (const f of ["index.html", "app.js", "coi-serviceworker.js", "pkg/qnn.js", "pkg/qnn_bg.wasm", "pkg-mt/qnn.js", "pkg-mt/qnn_bg.wasm", "worker.js",
    "models/mnist-mini-4bit.safetensors", "examples/ten-lines.html"]) {
    assert.ok(fs.existsSync(path.join(dist, f)), `no ${f} in the --dist folder`);
  }
  const html = fs.readFileSync(path.join(dist, "index.html"), "utf8");
  const head = html.slice(0, html.indexOf("</head>"));
  assert.match(head.match(/<script[^>]*>/)?.[0] ?? "", /src="coi-serviceworker\.js"/, "the first script in <head> must be coi-serviceworker.js");
});

test("served with COOP/COEP (as scripts/web.sh serves), the page is cross-origin isolated at once, with no service worker", async () => {
  const base = await serve(dist);
  const headers = (await fetch(base)).headers;
  assert.equal(headers.get("cross-origin-opener-policy"), "same-origin");
  assert.equal(headers.get("cross-origin-embedder-policy"), "require-corp");
  const { context, page, errors } = await open();
  await page.goto(base);
  await page.waitForFunction(ready, null, { timeout: 60_000 });
  await page.waitForTimeout(1000); // a reload, if the service worker wrongly started one, happens by now
  const s = await page.evaluate(isolation);
  assert.deepEqual(s, { came: "navigate", isolated: true, sab: "function", controller: null }, JSON.stringify(s));
  assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length), 0, "a service worker was registered");
  assert.deepEqual(errors, []);
  await context.close();
});

test("served by a plain static server, the service worker reloads the page once and makes it cross-origin isolated", async () => {
  const base = await serve(dist, { plain: true });
  assert.equal((await fetch(base)).headers.get("cross-origin-opener-policy"), null, "the plain server sent COOP");
  const { context, page, errors } = await open();
  await page.goto(base);
  // the first document is not isolated (and may become ready); the reloaded one is
  await page.waitForFunction(() => window.crossOriginIsolated && window.qnn && window.qnn.status === "ready", null, { timeout: 60_000 });
  const s = await page.evaluate(isolation);
  assert.deepEqual(s, { came: "reload", isolated: true, sab: "function", controller: base + "coi-serviceworker.js" }, JSON.stringify(s));
  // the page still works through the worker: the ready model (models/, fetched via the worker) is loaded
  assert.equal(await page.evaluate(() => document.getElementById("modelnote").hidden), false, "the ready model's note is not shown");
  // isolated by the worker, the threaded module runs: its Web Workers (worker.js and pkg-mt/,
  // fetched through the service worker) start and take part in a parallel loop
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const t = await page.evaluate(() => ({ threads: window.qnn.threads, working: window.qnn.threadsWorking(64) }));
  assert.equal(t.threads, cores, JSON.stringify(t));
  if (cores > 1) assert.ok(t.working > 1, `behind the service worker only ${t.working} thread(s) took part in a parallel loop`);
  // a second visit in the same browser is isolated on arrival, with no reload
  const again = await context.newPage();
  await again.goto(base);
  await again.waitForFunction(ready, null, { timeout: 60_000 });
  await again.waitForTimeout(1000);
  const s2 = await again.evaluate(isolation);
  assert.deepEqual(s2, { ...s, came: "navigate" }, `the second visit: ${JSON.stringify(s2)}`);
  await page.screenshot({ path: path.join(root, "target/web-test/site-service-worker.png") });
  assert.deepEqual(errors, []);
  await context.close();
});

test("with service workers blocked, the page runs without isolation, without a reload and without an error", async () => {
  const base = await serve(dist, { plain: true });
  const { context, page, errors } = await open({ serviceWorkers: "block" });
  await page.goto(base);
  await page.waitForFunction(ready, null, { timeout: 60_000 });
  await page.waitForTimeout(2000);
  const s = await page.evaluate(isolation);
  assert.deepEqual(s, { came: "navigate", isolated: false, sab: "undefined", controller: null }, JSON.stringify(s));
  assert.deepEqual(errors, []);
  await context.close();
});

test("where the worker's headers do not isolate the page, it reloads once only, then runs without isolation", async () => {
  // a copy of the --dist folder whose worker leaves COEP out, as a browser that ignored it would
  const site = fs.mkdtempSync(path.join(os.tmpdir(), "qnn-coi-guard-"));
  fs.cpSync(dist, site, { recursive: true });
  const sw = path.join(site, "coi-serviceworker.js");
  const line = 'headers.set("Cross-Origin-Embedder-Policy", "require-corp");';
  const text = fs.readFileSync(sw, "utf8");
  assert.ok(text.includes(line), "the worker no longer sets COEP this way: update this test");
  fs.writeFileSync(sw, text.replace(line, ""));
  const base = await serve(site, { plain: true });
  const { context, page, errors } = await open();
  let documents = 0;
  page.on("request", (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) documents++; });
  await page.goto(base);
  await page.waitForFunction(() => performance.getEntriesByType("navigation")[0].type === "reload" && window.qnn && window.qnn.status === "ready", null, { timeout: 60_000 });
  await page.waitForTimeout(3000); // a second reload would come within this
  const s = await page.evaluate(isolation);
  assert.deepEqual(s, { came: "reload", isolated: false, sab: "undefined", controller: base + "coi-serviceworker.js" }, JSON.stringify(s));
  assert.equal(documents, 2, "the page loaded more than twice (a reload loop)");
  assert.deepEqual(errors, []);
  await context.close();
  fs.rmSync(site, { recursive: true });
});

/** The page's CPU benchmark (a short one) at URL in a context with OPTIONS: window.qnn. */
async function cpuBench(url, options = {}) {
  const { context, page, errors } = await open(options);
  await page.goto(url + "?bench=1&device=cpu&bench_images=64");
  await page.waitForFunction(() => window.qnn && ["done", "error"].includes(window.qnn.status), null, { timeout: 300_000, polling: 500 });
  const q = await page.evaluate(() => ({ ...window.qnn, deviceLine: document.getElementById("device").textContent }));
  assert.deepEqual(errors, []);
  await context.close();
  assert.equal(q.status, "done", JSON.stringify(q.errors));
  return q;
}

test("cross-origin isolated, the page trains on the CPU with the threaded module, its workers working too", async () => {
  const base = await serve(dist);
  const { context, page, errors } = await open();
  await page.goto(base);
  await page.waitForFunction(ready, null, { timeout: 60_000 });
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const t = await page.evaluate(() => ({ threads: window.qnn.threads, working: window.qnn.threadsWorking(64) }));
  assert.equal(t.threads, cores, JSON.stringify(t));
  if (cores > 1) assert.ok(t.working > 1, `only ${t.working} thread(s) took part in a parallel loop`);
  assert.deepEqual(errors, []);
  await context.close();
  const q = await cpuBench(base);
  assert.equal(q.bench.threads, cores);
  assert.match(q.bench.device, new RegExp(`CPU \\(${cores} threads\\)`));
  assert.match(q.deviceLine, new RegExp(`WebAssembly, ${cores} threads`));
  console.log(`the page's CPU benchmark, threaded (${q.bench.device}): ${q.bench.images_per_second.toFixed(2)} training images/s`);
});

test("not cross-origin isolated (no headers, service workers blocked), the page trains single-threaded and says so", async () => {
  const q = await cpuBench(await serve(dist, { plain: true }), { serviceWorkers: "block" });
  assert.equal(q.threads, 1);
  assert.equal(q.bench.threads, 1);
  assert.match(q.bench.device, /CPU \(1 threads\)/);
  assert.match(q.deviceLine, /single-threaded: the page is not cross-origin isolated/);
  console.log(`the page's CPU benchmark, single-threaded (${q.bench.device}): ${q.bench.images_per_second.toFixed(2)} training images/s`);
});

test("the --npm folder is an npm package with TypeScript declarations", () => {
  for (const f of ["package.json", "qnn.js", "qnn_bg.wasm", "qnn.d.ts", "threads.js", "threads.d.ts", "worker.js", "pkg-mt/qnn.js", "pkg-mt/qnn_bg.wasm", "pkg-mt/qnn.d.ts", "README.md", "LICENSE-MIT", "LICENSE-APACHE"]) {
    assert.ok(fs.existsSync(path.join(npm, f)), `no ${f} in the --npm folder`);
  }
  const p = JSON.parse(fs.readFileSync(path.join(npm, "package.json"), "utf8"));
  const cargo = fs.readFileSync(path.join(root, "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)[1];
  assert.equal(p.name, "qnn");
  assert.equal(p.version, cargo, "package.json's version is Cargo.toml's");
  assert.equal(p.type, "module");
  assert.equal(p.license, "MIT OR Apache-2.0");
  assert.deepEqual([p.main, p.module, p.types], ["qnn.js", "qnn.js", "qnn.d.ts"]);
  assert.deepEqual(p.exports["."], { types: "./qnn.d.ts", default: "./qnn.js" });
  assert.deepEqual(p.exports["./threads"], { types: "./threads.d.ts", default: "./threads.js" });
  for (const f of p.files) assert.ok(fs.existsSync(path.join(npm, f)), `package.json lists ${f}, which is missing`);
  const dts = fs.readFileSync(path.join(npm, "qnn.d.ts"), "utf8");
  for (const decl of [/export class WebRun\b/, /static create\(/, /epoch\(on_step: Function/, /export function default_settings\(\): string/, /export default function __wbg_init/]) {
    assert.match(dts, decl);
  }
});

/** Opens the ten-line example at URL and returns the test error it prints. */
async function tenLines(url) {
  const { context, page, errors } = await open();
  await page.goto(url);
  await page.waitForFunction(() => /test error/.test(document.getElementById("out").textContent), null, { timeout: 300_000, polling: 500 });
  const out = await page.evaluate(() => document.getElementById("out").textContent);
  assert.deepEqual(errors, []);
  await context.close();
  const m = out.match(/test error ([\d.]+) %/);
  assert.ok(m, out);
  return [Number(m[1]), out.trim()];
}

test("the ten-line example trains mnist-mini through the page's pkg/ (served as scripts/web.sh does) far below chance", async () => {
  const [error, out] = await tenLines((await serve(dist)) + "examples/ten-lines.html");
  assert.ok(error < 25, `test error ${error}% (chance: 90%)\n${out}`);
  console.log(`ten lines, the page's pkg/: ${out.replaceAll("\n", "; ")}`);
});

test("the ten-line example trains through the npm package (imported as \"qnn\")", async () => {
  // the package where the example's import map looks for it: ../pkg/
  const site = fs.mkdtempSync(path.join(os.tmpdir(), "qnn-npm-site-"));
  fs.cpSync(path.join(root, "web/examples"), path.join(site, "examples"), { recursive: true });
  fs.cpSync(npm, path.join(site, "pkg"), { recursive: true });
  const [error, out] = await tenLines((await serve(site, { plain: true })) + "examples/ten-lines.html");
  assert.ok(error < 25, `test error ${error}% (chance: 90%)\n${out}`);
  console.log(`ten lines, the npm package: ${out.replaceAll("\n", "; ")}`);
  fs.rmSync(site, { recursive: true });
});

test("\"qnn/threads\" of the npm package trains with every core where the page is cross-origin isolated", async () => {
  // the package as ../pkg/ of a page that imports "qnn/threads", served with COOP/COEP
  const site = fs.mkdtempSync(path.join(os.tmpdir(), "qnn-npm-threads-"));
  fs.cpSync(npm, path.join(site, "pkg"), { recursive: true });
  fs.mkdirSync(path.join(site, "examples"));
  fs.writeFileSync(path.join(site, "examples/threads.html"), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "qnn/threads": "../pkg/threads.js" } }</script>
<pre id="out"></pre>
<script type="module">
import load from "qnn/threads";
try {
  const { module: qnn, threads, note } = await load();
  const settings = { ...JSON.parse(qnn.default_settings()), epochs: 1, limit: 2000, valid: 500 };
  const run = await qnn.WebRun.create(JSON.stringify(settings), [], "cpu");
  const r = JSON.parse(await run.epoch(() => {}));
  window.result = { threads, note, working: qnn.threads_working(64), device: run.device(), val_error: r.val_error };
} catch (e) { window.result = { error: String(e) }; }
document.getElementById("out").textContent = JSON.stringify(window.result);
</script>`);
  const { context, page, errors } = await open();
  await page.goto((await serve(site)) + "examples/threads.html");
  await page.waitForFunction(() => window.result, null, { timeout: 300_000, polling: 500 });
  const r = await page.evaluate(() => window.result);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  assert.deepEqual(errors, []);
  await context.close();
  fs.rmSync(site, { recursive: true });
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.threads, cores, JSON.stringify(r));
  assert.match(r.device, new RegExp(`CPU \\(${cores} threads\\)`));
  if (cores > 1) assert.ok(r.working > 1, `only ${r.working} thread(s) took part: ${JSON.stringify(r)}`);
  assert.ok(r.val_error < 50, `one epoch on 1,500 images: validation error ${r.val_error}% (chance: 90%)`);
  console.log(`"qnn/threads": ${JSON.stringify(r)}`);
});
