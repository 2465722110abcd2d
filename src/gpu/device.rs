//! Opening a wgpu device: pick an adapter, ask for the limits the ops need.

use crate::Error;

/// What kind of adapter wgpu found.
#[derive(Clone, Debug)]
pub struct AdapterChoice {
    /// The adapter.
    pub adapter: wgpu::Adapter,
    /// Its name, backend and device type.
    pub info: wgpu::AdapterInfo,
}

impl AdapterChoice {
    /// Software rasterizers (llvmpipe/lavapipe, SwiftShader, WARP) report device type Cpu.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
    /// "name (backend, device type)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan
        | wgpu::Backend::Metal
        | wgpu::Backend::Dx12
        | wgpu::Backend::BrowserWebGpu => 0,
        _ => 1,
    };
    (kind, api)
}

/// The best adapter: hardware before software, Vulkan/Metal/DX12 before GL.
pub async fn best_adapter() -> Result<AdapterChoice, Error> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    #[cfg(not(target_arch = "wasm32"))]
    let adapter = {
        let mut all = instance.enumerate_adapters(wgpu::Backends::all()).await;
        all.retain(|a| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        });
        all.sort_by_key(|a| rank(&a.get_info()));
        all.into_iter().next().ok_or(Error::NoAdapter)?
    };
    #[cfg(target_arch = "wasm32")]
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|_| Error::NoAdapter)?;
    let info = adapter.get_info();
    Ok(AdapterChoice { adapter, info })
}

/// Opens the device with the adapter's own buffer-size limits (the WebGPU defaults are smaller)
/// and the WebGPU defaults for everything the shaders are written against (8 storage buffers
/// per stage, 256 invocations per workgroup, 16 KiB workgroup memory).
pub async fn open(choice: &AdapterChoice) -> Result<(wgpu::Device, wgpu::Queue), Error> {
    choice
        .adapter
        .request_device(&device_descriptor(&choice.adapter))
        .await
        .map_err(|e| Error::Device(e.to_string()))
}

/// What [`open`] asks of an adapter. A program that opens the device itself (the desktop
/// window opens one device for drawing and training) asks for this, then builds the backend
/// with [`GpuBackend::from_device`](crate::GpuBackend::from_device).
pub fn device_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    let have = adapter.limits();
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
        max_buffer_size: have.max_buffer_size,
        ..wgpu::Limits::default()
    };
    wgpu::DeviceDescriptor {
        label: Some("qnn"),
        // timestamps, where the adapter has them, for `qnn bench`'s per-kernel GPU times
        required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
        required_limits: limits,
        ..Default::default()
    }
}
