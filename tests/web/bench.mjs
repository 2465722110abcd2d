// The page's benchmark mode in headless Chromium: training images/s of the seed's CIFAR-10
// example network (1-64 ×3, 4-bit relu, batch 64, generated data) on each path — WebGPU (here
// SwiftShader) and the wasm CPU backend. With --default-run, also the page's default run on
// mnist-mini (10 epochs) on the path the page picks: its time and test accuracy.
//
// The wasm CPU backend twice: the threaded module (every core) and the single-threaded one
// (CPU_IMAGES=N: N images a pass instead of 256).
//
// --native: also the native CPU backend on the same network (`qnn bench train --device cpu`,
// target/release/qnn or QNN_BIN) on one thread and on every core, in the same run, and the
// ratios. --rounds N: N rounds of every path one after the other, medians reported (the
// machines are shared and noisy). --profile: each path's op families (seconds a step).
//
//   scripts/web.sh --build && cd tests/web && npm ci && node bench.mjs [--cpu] [--native] [--rounds 3] [--profile] [--default-run]
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import { launch, serve } from "./harness.mjs";

const arg = (name) => process.argv.includes(name);
const rounds = Number(process.argv[process.argv.indexOf("--rounds") + 1]) || 1;
const native = arg("--native");
const qnnBin = process.env.QNN_BIN || new URL("../../target/release/qnn", import.meta.url).pathname;
if (native && !existsSync(qnnBin)) throw new Error(`--native needs ${qnnBin} (cargo build --release, or QNN_BIN=path)`);

const [server, base] = await serve();
const browser = await launch();
const version = browser.version();

async function run(query, timeout) {
  const page = await browser.newPage();
  const t0 = Date.now();
  await page.goto(base + "?" + query);
  await page.waitForFunction(() => window.qnn && ["done", "error"].includes(window.qnn.status), null, { timeout, polling: 1000 });
  const q = await page.evaluate(() => window.qnn);
  await page.close();
  if (q.status !== "done") throw new Error(`${query}: ${JSON.stringify(q.errors)}`);
  return { ...q, wall_seconds: (Date.now() - t0) / 1000 };
}

const results = { browser: `Chromium ${version} (headless)`, cpu: os.cpus()[0].model, rounds };
// cpu: the threaded module (the served page is cross-origin isolated); cpu-1: the
// single-threaded one (threads=1), as a page that is not isolated gets
const paths = arg("--cpu") ? ["cpu", "cpu-1"] : ["gpu", "cpu", "cpu-1"];
if (native) paths.push("native-1", `native-${os.cpus().length}`);
const label = {
  gpu: "WebGPU", cpu: "wasm CPU, threaded", "cpu-1": "wasm CPU, one thread",
  "native-1": "native CPU, one thread", [`native-${os.cpus().length}`]: `native CPU, ${os.cpus().length} threads`,
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const samples = Object.fromEntries(paths.map((k) => [k, []]));

// the page's ?bench=1 on one path
async function page(key) {
  const device = key.startsWith("cpu") ? "cpu" : "gpu";
  const images = device === "gpu" ? 128 : Number(process.env.CPU_IMAGES) || 256;
  const q = await run(`bench=1&device=${device}&bench_images=${images}${key === "cpu-1" ? "&threads=1" : ""}${arg("--profile") ? "&profile=1" : ""}`, 900_000);
  const profile = q.bench.profile && Object.fromEntries(q.bench.profile.map(([f, s]) => [f, (s * 1e3 * 64) / q.bench.images]));
  return { ...q.bench, profile_ms_per_step: profile || undefined };
}

// `qnn bench train --device cpu` on `threads` threads: the same network, batch and data shape
function nativeRun(threads) {
  const out = execFileSync(qnnBin, ["bench", "train", "--device", "cpu", "--seconds", "6", "--json"], {
    env: { ...process.env, RAYON_NUM_THREADS: String(threads) }, encoding: "utf8",
  });
  const row = [JSON.parse(out)].flat()[0];
  const profile = Object.fromEntries((row.families || []).map((f) => [f.family, f.ms_per_step]));
  return { device: row.device, threads, images_per_second: row.images_per_second, profile_ms_per_step: profile };
}

for (let round = 1; round <= rounds; round++) {
  for (const key of paths) {
    const r = key.startsWith("native") ? nativeRun(Number(key.split("-")[1])) : await page(key);
    samples[key].push(r);
    console.log(`round ${round}, ${label[key]} (${r.device}): ${r.images_per_second.toFixed(2)} training images/s (seed CIFAR-10 network, batch 64)`);
    if (r.profile_ms_per_step) console.log("  ms a step: " + Object.entries(r.profile_ms_per_step).map(([f, ms]) => `${f} ${ms.toFixed(1)}`).join(", "));
  }
}
for (const key of paths) {
  const ips = samples[key].map((r) => r.images_per_second);
  results[key] = { ...samples[key][0], images_per_second: median(ips), images_per_second_rounds: ips };
}
const ratio = (a, b) => results[a] && results[b] ? (results[a].images_per_second / results[b].images_per_second).toFixed(2) + "×" : null;
const ratios = {
  "wasm threaded / wasm one thread": ratio("cpu", "cpu-1"),
  "native one thread / wasm one thread": ratio("native-1", "cpu-1"),
  [`native ${os.cpus().length} threads / wasm threaded`]: ratio(`native-${os.cpus().length}`, "cpu"),
};
results.ratios = Object.fromEntries(Object.entries(ratios).filter(([, v]) => v));
console.log(`\n| path | images/s (median of ${rounds}) | rounds |\n|---|---|---|`);
for (const key of paths) console.log(`| ${label[key]} (${results[key].device}) | ${results[key].images_per_second.toFixed(1)} | ${results[key].images_per_second_rounds.map((x) => x.toFixed(0)).join(", ")} |`);
for (const [k, v] of Object.entries(results.ratios)) console.log(`${k}: ${v}`);
if (process.argv.includes("--default-run")) {
  const q = await run("autostart=1", 3_600_000);
  results.default_run = { device: q.device, seconds: q.wall_seconds, test_accuracy: 100 - q.state.test_error };
  console.log(`default run (mnist-mini, 10 epochs, ${q.device}): ${q.wall_seconds.toFixed(0)} s, test accuracy ${(100 - q.state.test_error).toFixed(2)}%`);
}
console.log(JSON.stringify(results));
await browser.close();
server.close();
