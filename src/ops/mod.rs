//! One module per kernel family. Each holds the CPU twin (plain Rust over slices: the reference
//! the GPU is tested against, and the CPU backend itself) and the GPU launcher for
//! `shaders/<family>.wgsl`. tests/ops_gpu_vs_cpu.rs checks every pair.

pub mod batchnorm;
pub mod conv;
pub mod data;
pub mod dense;
pub mod gemm;
pub mod loss;
pub mod optimizer;
pub mod pool;
pub mod quantize;

/// Every GPU kernel the launchers dispatch, for tests/kernel_contracts.rs, which checks each
/// against its WGSL (bindings, parameter size, override constants).
pub static KERNELS: &[&crate::gpu::Kernel] = &[
    &conv::FORWARD,
    &conv::GRAD_INPUT,
    &conv::GRAD_WEIGHT,
    &conv::SUM_SLICES,
    &dense::FORWARD,
    &dense::GRAD_INPUT,
    &dense::GRAD_WEIGHT,
    &batchnorm::PARTIAL,
    &batchnorm::STATS,
    &batchnorm::APPLY,
    &batchnorm::APPLY_POOL,
    &batchnorm::BACK_PARTIAL,
    &batchnorm::BACK_REDUCE,
    &batchnorm::BACK_APPLY,
    &batchnorm::CHANNEL_SUM_PARTIAL,
    &batchnorm::CHANNEL_SUM,
    &pool::FORWARD,
    &pool::BACKWARD,
    &pool::GLOBAL_FORWARD,
    &pool::GLOBAL_BACKWARD,
    &quantize::ACT_FORWARD,
    &quantize::ACT_BACKWARD,
    &quantize::ABS_MAX,
    &quantize::WEIGHT,
    &loss::SQUARED_HINGE,
    &optimizer::ADAM,
    &optimizer::SGD,
    &data::GATHER,
];
