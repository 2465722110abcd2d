// Cross-origin isolation where the server cannot send the headers (GitHub Pages, most static
// hosts). wasm threads need SharedArrayBuffer, which a page only gets when it is cross-origin
// isolated: its responses carry Cross-Origin-Opener-Policy: same-origin and
// Cross-Origin-Embedder-Policy: require-corp. scripts/web.sh sends them; elsewhere this file
// adds them. The idea is gzuidhof/coi-serviceworker's (MIT); this is our own smaller version.
//
// The one file plays two parts:
// - in the page (a classic script, first in <head>): if the page is not isolated, it registers
//   this file as a service worker and reloads once when the worker controls the page. Where
//   the page is isolated already (the server sent the headers), it does nothing.
// - as the service worker: it re-serves this origin's responses with the two headers added.
//
// It never reloads twice in a row (a browser that ignores the headers from a service worker
// would loop otherwise), and without service workers (http:// other than localhost, or
// blocked) the page simply runs without isolation. window.crossOriginIsolated tells which.
"use strict";
if (typeof window === "undefined") {
  // the service worker: take over at once (no second visit needed), and claim the open page
  self.addEventListener("install", () => self.skipWaiting());
  self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
  self.addEventListener("fetch", (event) => {
    const request = event.request;
    // other origins' responses are left to the network (their headers are not ours to set);
    // an "only-if-cached" request outside same-origin mode would make fetch() throw
    if (new URL(request.url).origin !== self.location.origin) return;
    if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
    event.respondWith(fetch(request).then((response) => {
      // opaque responses (status 0: redirects under "manual") cannot be rebuilt
      if (response.status === 0) return response;
      const headers = new Headers(response.headers);
      headers.set("Cross-Origin-Opener-Policy", "same-origin");
      headers.set("Cross-Origin-Embedder-Policy", "require-corp");
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
    }));
  });
} else {
  (() => {
    const flag = "qnn-coi-reloaded";
    let reloaded = false;
    try {
      reloaded = sessionStorage.getItem(flag) === "1";
      sessionStorage.removeItem(flag);
    } catch { /* no sessionStorage (a sandboxed frame): then no reload guard is needed either */ }
    if (window.crossOriginIsolated) return;
    if (!window.isSecureContext || !("serviceWorker" in navigator)) {
      console.info("coi-serviceworker: no service workers here (https or localhost needed); the page runs without cross-origin isolation");
      return;
    }
    if (reloaded) {
      console.warn("coi-serviceworker: still not cross-origin isolated after the reload; the page runs without it");
      return;
    }
    const reload = () => {
      try { sessionStorage.setItem(flag, "1"); } catch { return; } // no guard, no reload: never loop
      location.reload();
    };
    navigator.serviceWorker.register(document.currentScript.src).then((registration) => {
      if (!registration) return; // a stubbed register() (Playwright's serviceWorkers: "block")
      // controlled or active already (a hard reload bypasses the worker): one reload gives the
      // worker the page; else the first visit waits for the new worker to claim it
      if (navigator.serviceWorker.controller || registration.active) reload();
      else navigator.serviceWorker.addEventListener("controllerchange", reload, { once: true });
    }, (e) => console.warn("coi-serviceworker: could not register the service worker:", e));
  })();
}
