// A Web Worker of the threaded module's rayon pool (src/web.rs's ThreadPool, started by app.js):
// it instantiates the module on the page's shared memory, says so (or why it could not), then
// runs one of rayon's threads until the page goes (wasm-bindgen-rayon's wbg_rayon_start_worker).
self.onmessage = async ({ data }) => {
  let pkg;
  try {
    pkg = await import(data.mainJS);
    await pkg.default({ module_or_path: data.module, memory: data.memory });
  } catch (e) {
    postMessage({ error: String(e) });
    return;
  }
  postMessage({ ready: true });
  pkg.wbg_rayon_start_worker(data.receiver);
};
