// Loads qnn's wasm module with every core where it can: the threaded build (pkg-mt/: rayon over
// a pool of Web Workers on shared memory, src/web.rs's ThreadPool) in a cross-origin isolated
// page, else the single-threaded build, and says which. The page (app.js) and the npm package
// ("qnn/threads") load it this way.
//
//   import load from "qnn/threads";
//   const { module: qnn, threads, note } = await load();   // qnn: what `import ... from "qnn"` gives, initialized

/**
 * @param {{threads?: number, single?: string | URL, threaded?: string | URL}} [options]
 *   threads: how many in all, the calling thread included (default: every core; 1: the
 *   single-threaded build); single / threaded: the two builds' JavaScript glue (default: the
 *   npm package's ./qnn.js and ./pkg-mt/qnn.js beside this file).
 * @returns {Promise<{module: object, threads: number, note: string, workers: Worker[]}>}
 */
export default async function load(options = {}) {
  const wanted = Math.max(1, Math.floor(Number(options.threads) || navigator.hardwareConcurrency || 1));
  const single = String(options.single || new URL("./qnn.js", import.meta.url));
  const threaded = String(options.threaded || new URL("./pkg-mt/qnn.js", import.meta.url));
  const singleThreaded = async (note) => {
    const m = await import(single);
    await m.default();
    return { module: m, threads: 1, note, workers: [] };
  };
  if (!(globalThis.crossOriginIsolated && typeof SharedArrayBuffer === "function")) {
    return singleThreaded("single-threaded: the page is not cross-origin isolated");
  }
  if (options.threads !== undefined && wanted === 1) return singleThreaded("single-threaded, as asked (threads=1)");
  try {
    const m = await import(threaded);
    await m.default();
    // the calling thread is one of the pool's threads
    const pool = new m.ThreadPool(wanted);
    const start = { module: m.ThreadPool.module(), memory: m.ThreadPool.memory(), receiver: pool.receiver(), mainJS: threaded };
    const workers = await Promise.all(Array.from({ length: pool.workers() }, () => new Promise((resolve, reject) => {
      const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "qnn-rayon" });
      w.onmessage = ({ data }) => data.ready ? resolve(w) : reject(new Error(data.error));
      w.onerror = (e) => reject(new Error(e.message || "a worker did not start"));
      w.postMessage(start);
    })));
    pool.build();
    return { module: m, threads: m.threads(), note: `${m.threads()} threads`, workers };
  } catch (e) {
    return singleThreaded(`single-threaded: the threaded module did not start (${e})`);
  }
}
