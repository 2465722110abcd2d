//! `qnn gui`: the desktop window. It draws and reacts (its flags become [`settings::Settings`] in
//! the command line's `args.rs`); the run is the library's
//! [`qnn::run::Run`], driven on a worker thread ([`worker`]), and what the views show
//! (filters at their levels, level histograms, confusion matrix, predictions) comes from
//! [`qnn::inspect`].
//!
//! - `settings.rs`: what the settings panel edits and remembers between launches;
//! - `worker.rs`: the training thread (one run: data, device, epochs, files, events);
//! - `app.rs`: the window's state and its reactions to buttons and events;
//! - `views/`: the layout and the drawing, a file per panel.

mod app;
pub mod settings;
mod views;
pub(crate) mod worker;

use std::path::PathBuf;

use anyhow::{bail, Result};

use settings::Settings;

/// What the command line asks of the window beyond the settings.
pub struct Launch {
    /// The settings the command line's training flags give.
    pub settings: Settings,
    /// `--resume`: with `start`, continue the saved run.
    pub resume: bool,
    /// Some training flag was given on the command line: its settings replace the remembered ones.
    pub flags_given: bool,
    /// Start training as soon as the window is up.
    pub start: bool,
    /// Close the window when the run ends (without a run: once the first frames are drawn).
    pub exit_when_done: bool,
    /// A model file to open at start.
    pub model: Option<PathBuf>,
    /// Save a PNG of the window before closing.
    pub screenshot: Option<PathBuf>,
}

/// Opens the window and returns when it is closed.
pub fn gui(launch: Launch) -> Result<()> {
    if let Some(why) = no_display() {
        bail!("qnn gui needs a display, and {why}. To train without a window use `qnn train` (same flags), e.g. `qnn train -ds mnist-mini -ne 10`");
    }
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("qnn — quantized network trainer")
            .with_inner_size([1280.0, 860.0])
            .with_min_inner_size([800.0, 560.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: wgpu_options(),
        ..Default::default()
    };
    let exit = app::ExitReport::default();
    let report = exit.clone();
    eframe::run_native(
        "qnn",
        options,
        Box::new(move |cc| Ok(Box::new(app::QnnApp::new(cc, launch, report)))),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "could not open the window ({}). To train without a window use `qnn train` (same flags)",
            without_source_location(&e.to_string())
        )
    })?;
    exit.finish()
}

/// A window-system error as a person reads it: winit's "os error at FILE:LINE: why" names a
/// source file of the library (a path into the build machine's crate registry); keep the why.
fn without_source_location(message: &str) -> String {
    match message.find("os error at ") {
        Some(at) => {
            let rest = &message[at..];
            // "…/mod.rs:788: Failed to open connection to X server"
            let why = rest
                .find(".rs:")
                .and_then(|i| rest[i + 4..].find(": ").map(|j| &rest[i + 4 + j + 2..]))
                .unwrap_or(rest);
            format!("{}{why}", &message[..at])
        }
        None => message.to_string(),
    }
}

/// Why no window can open here, where that can be told before trying (Linux and the BSDs:
/// no X11 or Wayland display in the environment).
fn no_display() -> Option<String> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return None;
    }
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    (!set("DISPLAY") && !set("WAYLAND_DISPLAY"))
        .then(|| "none was found (neither DISPLAY nor WAYLAND_DISPLAY is set)".to_string())
}

/// The window's wgpu device asks for what the trainer needs too (the adapter's buffer limits,
/// timestamps), so that on a hardware GPU the trainer can share it.
fn wgpu_options() -> eframe::egui_wgpu::WgpuConfiguration {
    use eframe::egui_wgpu::{WgpuSetup, WgpuSetupCreateNew};
    let mut setup = WgpuSetupCreateNew::without_display_handle();
    let drawing_only = setup.device_descriptor.clone();
    setup.device_descriptor = std::sync::Arc::new(move |adapter: &wgpu::Adapter| {
        if adapter.get_info().backend == wgpu::Backend::Gl {
            // the trainer's kernels need compute shaders: on GL it trains on the CPU
            return drawing_only(adapter);
        }
        let mut desc = qnn::gpu::device::device_descriptor(adapter);
        // what egui asks for its surfaces
        desc.required_limits.max_texture_dimension_2d = 8192;
        desc
    });
    eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: WgpuSetup::CreateNew(setup),
        ..Default::default()
    }
}
