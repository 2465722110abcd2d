//! What differs between a native program and a web page: the clock, and giving the browser's
//! event loop a turn (a page whose training never yields freezes; natively nothing waits).

/// Seconds on a monotonic clock (in the browser: milliseconds since the epoch, which is enough
/// for images per second).
pub fn now_seconds() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1000.0
    }
}

/// Waits `ms` milliseconds without blocking a browser (natively: sleeps).
pub async fn sleep_ms(ms: u32) {
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(std::time::Duration::from_millis(ms as u64));
    #[cfg(target_arch = "wasm32")]
    {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let global = js_sys::global();
            let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            match set_timeout {
                Some(f) => {
                    let _ = f.call2(&global, &resolve, &(ms as f64).into());
                }
                None => {
                    let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
                }
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsCast;

/// Gives the browser's event loop a turn when the last one was more than 40 ms ago (so a page
/// stays responsive while it trains); natively returns at once.
pub async fn yield_if_due() {
    #[cfg(target_arch = "wasm32")]
    {
        use std::cell::Cell;
        thread_local! { static LAST: Cell<f64> = const { Cell::new(0.0) }; }
        let now = now_seconds();
        if now - LAST.with(|l| l.get()) > 0.04 {
            sleep_ms(0).await;
            LAST.with(|l| l.set(now_seconds()));
        }
    }
}
