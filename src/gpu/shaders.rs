//! The WGSL sources, one file per kernel family, compiled into the binary; each is followed by
//! `shaders/common.wgsl` (the helpers every family uses), so the family's line numbers hold.
//! Values the Rust side also knows (workgroup size `WG`, batch norm's `EPS` and `ALPHA`) are
//! `override` constants without a default, set from the Rust constants by each
//! [`Kernel`](super::Kernel)'s `constants`; tests/kernel_contracts.rs checks them.

/// A WGSL source file.
#[derive(Debug)]
pub struct Shader {
    /// File name under `shaders/`.
    pub name: &'static str,
    /// The WGSL text, with `shaders/common.wgsl` appended.
    pub source: &'static str,
}

macro_rules! shader {
    ($id:ident, $file:literal) => {
        #[doc = concat!("`shaders/", $file, "` followed by `shaders/common.wgsl`.")]
        pub static $id: Shader = Shader {
            name: $file,
            source: concat!(
                include_str!(concat!("../../shaders/", $file)),
                include_str!("../../shaders/common.wgsl")
            ),
        };
    };
}

shader!(CONV, "conv.wgsl");
shader!(DENSE, "dense.wgsl");
shader!(BATCHNORM, "batchnorm.wgsl");
shader!(BATCHNORM_BACKWARD, "batchnorm_backward.wgsl");
shader!(REDUCE, "reduce.wgsl");
shader!(POOL, "pool.wgsl");
shader!(QUANTIZE, "quantize.wgsl");
shader!(LOSS, "loss.wgsl");
shader!(OPTIMIZER, "optimizer.wgsl");
shader!(DATA, "data.wgsl");

/// Every shader, for validation in tests.
pub static ALL: [&Shader; 10] = [
    &CONV,
    &DENSE,
    &BATCHNORM,
    &BATCHNORM_BACKWARD,
    &REDUCE,
    &POOL,
    &QUANTIZE,
    &LOSS,
    &OPTIMIZER,
    &DATA,
];
