// The page's benchmark mode in headless Chromium: training images/s of the seed's CIFAR-10
// example network (1-64 ×3, 4-bit relu, batch 64, generated data) on each path — WebGPU (here
// SwiftShader) and the wasm CPU backend. With --default-run, also the page's default run on
// mnist-mini (10 epochs) on the path the page picks: its time and test accuracy.
//
// The wasm CPU backend twice: the threaded module (every core) and the single-threaded one
// (CPU_IMAGES=N: N images a pass instead of 256).
//
//   scripts/web.sh --build && cd tests/web && npm ci && node bench.mjs [--cpu] [--default-run]
import { launch, serve } from "./harness.mjs";

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

const results = { browser: `Chromium ${version} (headless)` };
// cpu: the threaded module (the served page is cross-origin isolated); cpu-1: the
// single-threaded one (threads=1), as a page that is not isolated gets
const paths = process.argv.includes("--cpu") ? ["cpu", "cpu-1"] : ["gpu", "cpu", "cpu-1"];
for (const key of paths) {
  const device = key.startsWith("cpu") ? "cpu" : "gpu";
  const q = await run(`bench=1&device=${device}&bench_images=${device === "gpu" ? 128 : Number(process.env.CPU_IMAGES) || 256}${key === "cpu-1" ? "&threads=1" : ""}`, 900_000);
  results[key] = q.bench;
  console.log(`seed CIFAR-10 network, batch 64, ${device === "gpu" ? "WebGPU" : "wasm CPU"} (${q.bench.device}): ${q.bench.images_per_second.toFixed(2)} training images/s`);
}
if (results["cpu-1"]) console.log(`wasm CPU, threaded / single-threaded: ${(results.cpu.images_per_second / results["cpu-1"].images_per_second).toFixed(2)}×`);
if (process.argv.includes("--default-run")) {
  const q = await run("autostart=1", 3_600_000);
  results.default_run = { device: q.device, seconds: q.wall_seconds, test_accuracy: 100 - q.state.test_error };
  console.log(`default run (mnist-mini, 10 epochs, ${q.device}): ${q.wall_seconds.toFixed(0)} s, test accuracy ${(100 - q.state.test_error).toFixed(2)}%`);
}
console.log(JSON.stringify(results));
await browser.close();
server.close();
