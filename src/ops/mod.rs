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
