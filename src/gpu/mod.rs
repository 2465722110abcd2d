//! The wgpu backend: a buffer arena, a pipeline cache, a bind-group cache and a list of recorded
//! commands that `flush` submits as one command buffer. The op launchers live beside their CPU
//! twins in `crate::ops::*`; this file only holds what they share.

mod backend;
pub mod device;
pub mod shaders;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::{Buf, Counters, Dtype, Family, KernelTime};
use crate::Error;
pub use device::{best_adapter, AdapterChoice};
pub use shaders::Shader;

/// How a kernel binds one storage buffer. Binding 0 is always the kernel's uniform parameters;
/// storage buffers follow at 1, 2, … in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One compute entry point with its override constants and binding layout. tests/
/// kernel_contracts.rs checks every kernel of [`crate::ops::KERNELS`] against its WGSL.
#[derive(Debug)]
pub struct Kernel {
    /// What the kernel computes, for profiles: the entry point, or for the convolution's one
    /// entry point the pass its MODE constant selects.
    pub name: &'static str,
    /// The family it counts under in profiles.
    pub family: Family,
    /// The WGSL file that holds the entry point.
    pub shader: &'static Shader,
    /// Name of the `@compute` function.
    pub entry: &'static str,
    /// Pipeline-overridable constants: (name, value). Every `override` without a default that
    /// the entry point reaches must be here (e.g. [`WG`] for the 1-D kernels).
    pub constants: &'static [(&'static str, f64)],
    /// Access of each storage buffer, bindings 1, 2, ….
    pub storage: &'static [Access],
    /// Size in bytes of the uniform parameters at binding 0: `size_of` the launcher's
    /// `#[repr(C)]` twin of the shader's `struct Params` (`GpuBackend::dispatch` checks it).
    pub params_bytes: usize,
}

impl Kernel {
    /// What the kernel computes, for profiles.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The family of ops a kernel belongs to, for the share of a training step each takes.
    pub fn family(&self) -> Family {
        self.family
    }
}

/// The override constant `WG` of shaders/common.wgsl (threads per workgroup of the 1-D
/// kernels), for the `constants` of every kernel that uses it.
pub const WG_CONSTANT: (&str, f64) = ("WG", WG as f64);

/// GPU time per dispatch, measured with timestamp queries (one compute pass per dispatch while
/// profiling, so the timestamps bracket exactly one kernel).
struct Profiler {
    queries: wgpu::QuerySet,
    capacity: u32,
    resolve: wgpu::Buffer,
    /// (kernel, GPU seconds) of every dispatch submitted since the last `take_profile`.
    samples: Vec<(&'static Kernel, f64)>,
}

/// Threads per workgroup of every 1-D kernel (the WebGPU default maximum); the 1-D kernels get
/// it as their override constant `WG` ([`WG_CONSTANT`]).
pub const WG: u32 = 256;

/// Workgroup grid for `n` threads of a 1-D kernel: x is capped at 65535 groups and y takes the
/// rest; kernels rebuild the index as gid.x + gid.y·(num_workgroups.x·256).
pub fn grid_1d(n: usize) -> [u32; 3] {
    let groups = n.div_ceil(WG as usize).max(1);
    let x = groups.min(65535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

enum Cmd {
    Dispatch {
        kernel: &'static Kernel,
        pipeline: wgpu::ComputePipeline,
        bind: wgpu::BindGroup,
        groups: [u32; 3],
    },
    /// `bytes` from the start of `src` to `dst` at byte `dst_offset`.
    Copy {
        src: wgpu::Buffer,
        dst: wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    },
    Clear {
        buf: wgpu::Buffer,
    },
}

/// The wgpu backend: buffers on one device, ops recorded until the next flush.
pub struct GpuBackend {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// The device's queue.
    pub queue: wgpu::Queue,
    /// The adapter the device was opened on.
    pub info: wgpu::AdapterInfo,
    /// Largest storage-buffer binding in bytes (`max_storage_buffer_binding_size`).
    pub max_binding_bytes: u64,
    bufs: Vec<wgpu::Buffer>,
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<usize, Pipeline>,
    uniforms: HashMap<Vec<u32>, wgpu::Buffer>,
    binds: HashMap<(usize, Vec<u32>, Vec<u32>), wgpu::BindGroup>,
    scratch: HashMap<&'static str, Buf>,
    pending: Vec<Cmd>,
    counters: Counters,
    /// The first error wgpu reported outside an error scope (wgpu's default handler panics):
    /// the next read-back returns it as [`Error::Device`].
    device_error: Arc<Mutex<Option<String>>>,
    profiler: Option<Profiler>,
}

impl GpuBackend {
    /// Opens the best adapter (hardware first) whatever its kind.
    pub async fn new_async() -> Result<Self, Error> {
        let choice = best_adapter().await?;
        Self::with_adapter(&choice).await
    }

    /// Opens this adapter.
    pub async fn with_adapter(choice: &AdapterChoice) -> Result<Self, Error> {
        let (device, queue) = device::open(choice).await?;
        Ok(Self::from_device(device, queue, choice.info.clone()))
    }

    /// The backend on a device opened elsewhere (e.g. by a window that draws with it too), best
    /// opened with [`device_descriptor`](device::device_descriptor)'s limits. Both may submit
    /// to its queue; the trainer's buffers and pipelines are its own.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let max_binding_bytes = device.limits().max_storage_buffer_binding_size;
        let device_error = Arc::new(Mutex::new(None));
        let slot = device_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut first) = slot.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }));
        Self {
            device,
            queue,
            info,
            max_binding_bytes,
            bufs: Vec::new(),
            modules: HashMap::new(),
            pipelines: HashMap::new(),
            uniforms: HashMap::new(),
            binds: HashMap::new(),
            scratch: HashMap::new(),
            pending: Vec::new(),
            counters: Counters::default(),
            device_error,
            profiler: None,
        }
    }

    /// Native convenience: blocks on [`GpuBackend::new_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self, Error> {
        pollster::block_on(Self::new_async())
    }

    pub(crate) fn raw(&self, b: Buf) -> &wgpu::Buffer {
        &self.bufs[b.id as usize]
    }

    pub(crate) fn alloc_bytes(&mut self, bytes: u64, len: usize, dtype: Dtype) -> Buf {
        // wgpu refuses empty bindings; storage sizes must be multiples of 4.
        let size = bytes.max(4).next_multiple_of(4);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.bufs.push(buffer);
        Buf {
            id: (self.bufs.len() - 1) as u32,
            len,
            dtype,
        }
    }

    /// A scratch buffer named `slot` of at least `len` f32, reused across calls (grown as needed).
    pub(crate) fn scratch(&mut self, slot: &'static str, len: usize) -> Buf {
        match self.scratch.get(slot) {
            Some(b) if b.len >= len => *b,
            _ => {
                let b = self.alloc_bytes(len as u64 * 4, len, Dtype::F32);
                self.scratch.insert(slot, b);
                b
            }
        }
    }

    fn pipeline(&mut self, k: &'static Kernel) -> &Pipeline {
        let key = k as *const Kernel as usize;
        if !self.pipelines.contains_key(&key) {
            let module = self.modules.entry(k.shader.name).or_insert_with(|| {
                self.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(k.shader.name),
                        source: wgpu::ShaderSource::Wgsl(k.shader.source.into()),
                    })
            });
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }];
            for (i, a) in k.storage.iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: i as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *a == Access::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(k.entry),
                    entries: &entries,
                });
            let pl = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(k.entry),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(k.entry),
                    layout: Some(&pl),
                    module,
                    entry_point: Some(k.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: k.constants,
                        // every kernel writes its workgroup memory before reading it
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
            self.pipelines.insert(key, Pipeline { pipeline, layout });
        }
        &self.pipelines[&key]
    }

    /// Records one dispatch of `k` with the uniform `params` (a `#[repr(C)]` Pod struct, the
    /// twin of the shader's `struct Params`, of 4-byte fields, `k.params_bytes` long) and the
    /// storage buffers `bufs` bound at 1, 2, …
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &mut self,
        k: &'static Kernel,
        params: &P,
        bufs: &[Buf],
        groups: [u32; 3],
    ) {
        debug_assert_eq!(bufs.len(), k.storage.len(), "{}: binding count", k.name);
        assert_eq!(
            std::mem::size_of::<P>(),
            k.params_bytes,
            "{}: size of the uniform parameters",
            k.name
        );
        let mut words: Vec<u32> = bytemuck::pod_collect_to_vec(bytemuck::bytes_of(params));
        words.resize(words.len().next_multiple_of(4).max(4), 0);
        let key = (
            k as *const Kernel as usize,
            words.clone(),
            bufs.iter().map(|b| b.id).collect::<Vec<_>>(),
        );
        if !self.binds.contains_key(&key) {
            let uniform = self
                .uniforms
                .entry(words.clone())
                .or_insert_with(|| {
                    let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("params"),
                        size: words.len() as u64 * 4,
                        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: true,
                    });
                    b.slice(..)
                        .get_mapped_range_mut()
                        .expect("freshly created mapped buffer")
                        .copy_from_slice(bytemuck::cast_slice(&words));
                    b.unmap();
                    b
                })
                .clone();
            let layout = self.pipeline(k).layout.clone();
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            }];
            for (i, b) in bufs.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: self.bufs[b.id as usize].as_entire_binding(),
                });
            }
            let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(k.entry),
                layout: &layout,
                entries: &entries,
            });
            self.binds.insert(key.clone(), bind);
        }
        let bind = self.binds[&key].clone();
        let pipeline = self.pipeline(k).pipeline.clone();
        self.pending.push(Cmd::Dispatch {
            kernel: k,
            pipeline,
            bind,
            groups,
        });
        self.counters.dispatches += 1;
    }

    pub(crate) fn record_copy(&mut self, src: Buf, dst: Buf, bytes: u64) {
        self.record_copy_into(src, dst, 0, bytes);
    }

    /// Records a copy of `src`'s first `bytes` into `dst` from byte `dst_offset` on (a
    /// multiple of 4).
    pub(crate) fn record_copy_into(&mut self, src: Buf, dst: Buf, dst_offset: u64, bytes: u64) {
        let (src, dst) = (self.raw(src).clone(), self.raw(dst).clone());
        self.pending.push(Cmd::Copy {
            src,
            dst,
            dst_offset,
            bytes,
        });
    }

    pub(crate) fn record_clear(&mut self, b: Buf) {
        let buf = self.raw(b).clone();
        self.pending.push(Cmd::Clear { buf });
    }

    /// Encodes everything recorded (consecutive dispatches share one compute pass) and submits it.
    pub(crate) fn submit(&mut self, extra: Option<(&wgpu::Buffer, &wgpu::Buffer, u64)>) {
        if self.pending.is_empty() && extra.is_none() {
            return;
        }
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        let cmds = std::mem::take(&mut self.pending);
        if self.profiler.is_some() {
            self.submit_profiled(enc, cmds, extra);
            return;
        }
        let mut i = 0;
        while i < cmds.len() {
            match &cmds[i] {
                Cmd::Dispatch { .. } => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: None,
                    });
                    while let Some(Cmd::Dispatch {
                        pipeline,
                        bind,
                        groups,
                        ..
                    }) = cmds.get(i)
                    {
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, bind, &[]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        i += 1;
                    }
                }
                Cmd::Copy {
                    src,
                    dst,
                    dst_offset,
                    bytes,
                } => {
                    enc.copy_buffer_to_buffer(src, 0, dst, *dst_offset, Some(*bytes));
                    i += 1;
                }
                Cmd::Clear { buf } => {
                    enc.clear_buffer(buf, 0, None);
                    i += 1;
                }
            }
        }
        if let Some((src, dst, bytes)) = extra {
            enc.copy_buffer_to_buffer(src, 0, dst, 0, Some(bytes));
        }
        self.queue.submit([enc.finish()]);
        self.counters.submits += 1;
    }

    /// Turns per-dispatch GPU timing on (when the adapter has timestamp queries; returns whether
    /// it does) or off. While on, every dispatch runs in its own compute pass and each submit
    /// waits for its timestamps: for benchmarks only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_profiling(&mut self, on: bool) -> bool {
        if !on {
            self.profiler = None;
            return true;
        }
        if !self
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return false;
        }
        let capacity = 4096;
        self.profiler = Some(Profiler {
            queries: self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: capacity,
            }),
            capacity,
            resolve: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: capacity as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            samples: Vec::new(),
        });
        true
    }

    /// The GPU time of each dispatch timed since the last call.
    pub fn take_profile(&mut self) -> Vec<KernelTime> {
        self.submit(None);
        match &mut self.profiler {
            Some(p) => std::mem::take(&mut p.samples)
                .into_iter()
                .map(|(k, seconds)| KernelTime {
                    name: k.name,
                    family: k.family,
                    seconds,
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// `submit` while profiling: one pass per dispatch with timestamps at its start and end,
    /// resolved and read back right away (blocking; native only).
    fn submit_profiled(
        &mut self,
        mut enc: wgpu::CommandEncoder,
        cmds: Vec<Cmd>,
        extra: Option<(&wgpu::Buffer, &wgpu::Buffer, u64)>,
    ) {
        let p = self.profiler.as_mut().expect("profiling");
        let mut kernels = Vec::new();
        for cmd in &cmds {
            match cmd {
                Cmd::Dispatch {
                    kernel,
                    pipeline,
                    bind,
                    groups,
                } => {
                    let i = 2 * kernels.len() as u32;
                    let timestamps =
                        (i + 1 < p.capacity).then(|| wgpu::ComputePassTimestampWrites {
                            query_set: &p.queries,
                            beginning_of_pass_write_index: Some(i),
                            end_of_pass_write_index: Some(i + 1),
                        });
                    if timestamps.is_some() {
                        kernels.push(*kernel);
                    }
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(kernel.entry),
                        timestamp_writes: timestamps,
                    });
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind, &[]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                }
                Cmd::Copy {
                    src,
                    dst,
                    dst_offset,
                    bytes,
                } => enc.copy_buffer_to_buffer(src, 0, dst, *dst_offset, Some(*bytes)),
                Cmd::Clear { buf } => enc.clear_buffer(buf, 0, None),
            }
        }
        if let Some((src, dst, bytes)) = extra {
            enc.copy_buffer_to_buffer(src, 0, dst, 0, Some(bytes));
        }
        let n = 2 * kernels.len() as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile read-back"),
            size: (n * 8).max(8),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if n > 0 {
            enc.resolve_query_set(&p.queries, 0..n as u32, &p.resolve, 0);
            enc.copy_buffer_to_buffer(&p.resolve, 0, &staging, 0, Some(n * 8));
        }
        self.queue.submit([enc.finish()]);
        self.counters.submits += 1;
        if n == 0 {
            return;
        }
        staging.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        let period = self.queue.get_timestamp_period() as f64 * 1e-9;
        if let Ok(view) = staging.slice(..).get_mapped_range() {
            let ticks: &[u64] = bytemuck::cast_slice(&view);
            for (k, t) in kernels.iter().zip(ticks.chunks_exact(2)) {
                p.samples
                    .push((*k, t[1].saturating_sub(t[0]) as f64 * period));
            }
        }
        staging.unmap();
    }

    /// Writes go through the queue, which runs them before the next submit's commands: submit
    /// what is recorded first, so a write never overtakes earlier work.
    pub(crate) fn write_bytes(&mut self, b: Buf, data: &[u8]) {
        self.submit(None);
        if !data.is_empty() {
            let n = data.len() / 4 * 4;
            self.queue.write_buffer(self.raw(b), 0, &data[..n]);
            if n < data.len() {
                let mut tail = [0u8; 4];
                tail[..data.len() - n].copy_from_slice(&data[n..]);
                self.queue.write_buffer(self.raw(b), n as u64, &tail);
            }
        }
    }

    /// Copies `b` to a mappable buffer and waits for it without blocking a browser's thread.
    pub(crate) async fn read_bytes(&mut self, b: Buf) -> Result<Vec<u8>, Error> {
        let bytes = (b.len as u64 * 4).max(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let src = self.raw(b).clone();
        self.submit(Some((&src, &staging, bytes)));
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::ReadBack(e.to_string()))?;
        rx.await
            .map_err(|_| Error::ReadBack("the device was lost".into()))?
            .map_err(|e| Error::ReadBack(e.to_string()))?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::ReadBack(e.to_string()))?
            .to_vec();
        staging.unmap();
        self.check_device_error()?;
        Ok(data)
    }

    /// The first error the device reported since it opened, if any.
    pub fn check_device_error(&self) -> Result<(), Error> {
        match self.device_error.lock().ok().and_then(|e| e.clone()) {
            Some(e) => Err(Error::Device(format!("the GPU refused the work: {e}"))),
            None => Ok(()),
        }
    }

    pub(crate) fn counters_now(&self) -> Counters {
        self.counters
    }
}
