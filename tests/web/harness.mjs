// What the page's test and benchmark share: web/ served on loopback, and Debian's headless
// Chromium with WebGPU enabled (flags from the project's machine notes).
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const web = path.join(root, "web");

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };

/** Serves web/ on 127.0.0.1 at a free port, with the COOP/COEP headers scripts/web.sh sends
 * (the page is cross-origin isolated, so web/coi-serviceworker.js stays out of the way: no
 * service worker, no reload); resolves to [server, base URL]. */
export async function serve() {
  const server = http.createServer((req, res) => {
    let p = path.join(web, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) p = path.join(p, "index.html");
    if (!p.startsWith(web) || !fs.existsSync(p)) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { "content-type": types[path.extname(p)] || "application/octet-stream",
      "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
    res.end(fs.readFileSync(p));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return [server, `http://127.0.0.1:${server.address().port}/`];
}

/** Headless Chromium with WebGPU (SwiftShader without a GPU) and a fresh profile. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    ignoreDefaultArgs: true,
    args: ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--no-default-browser-check",
      "--remote-debugging-pipe", `--user-data-dir=${fs.mkdtempSync(path.join(os.tmpdir(), "qnn-chromium-"))}`, "about:blank"],
  });
}
