//! The CPU backend: plain Rust over `Vec`s, images in parallel with rayon natively and in the
//! page's threaded wasm module (src/par.rs). It is the oracle the GPU kernels are tested against
//! and the fallback where the only GPU is a software rasterizer. Every op runs at once; `flush`
//! has nothing to do.

use std::future::Future;

use crate::backend::*;
use crate::ops;
use crate::quant::{ActQuant, WeightQuant};
use crate::Error;

enum Store {
    F32(Vec<f32>),
    U32(Vec<u32>),
    U8(Vec<u8>),
    /// Lent out to an op that writes it.
    Taken,
}

/// The CPU backend: one host `Vec` per buffer.
#[derive(Default)]
pub struct CpuBackend {
    store: Vec<Store>,
    /// (op, family, seconds) of each op while profiling (`qnn bench train`'s shares).
    profile: Option<Vec<KernelTime>>,
}

impl CpuBackend {
    /// An empty backend with no buffers.
    pub fn new() -> Self {
        Self::default()
    }

    fn f32(&self, b: Buf) -> &[f32] {
        match &self.store[b.id as usize] {
            Store::F32(v) => v,
            _ => panic!(
                "buffer {} is not f32 (or is both input and output of one op)",
                b.id
            ),
        }
    }

    fn u32(&self, b: Buf) -> &[u32] {
        match &self.store[b.id as usize] {
            Store::U32(v) => v,
            _ => panic!("buffer {} is not u32", b.id),
        }
    }

    fn u8(&self, b: Buf) -> &[u8] {
        match &self.store[b.id as usize] {
            Store::U8(v) => v,
            _ => panic!("buffer {} is not u8", b.id),
        }
    }

    /// Runs `op` and, while profiling, records its wall time under `name` and `family` (the
    /// families of the GPU's kernels, so the two profiles read alike).
    fn timed<R>(
        &mut self,
        name: &'static str,
        family: Family,
        op: impl FnOnce(&mut Self) -> R,
    ) -> R {
        if self.profile.is_none() {
            return op(self);
        }
        let t0 = crate::platform::now_seconds();
        let r = op(self);
        let dt = crate::platform::now_seconds() - t0;
        if let Some(p) = &mut self.profile {
            p.push(KernelTime {
                name,
                family,
                seconds: dt,
            });
        }
        r
    }

    /// Runs `f` with the U32 buffer `out` lent out mutably as bytes, `self` readable.
    fn write_bytes<R>(&mut self, out: Buf, f: impl FnOnce(&mut Self, &mut [u8]) -> R) -> R {
        let mut v = match std::mem::replace(&mut self.store[out.id as usize], Store::Taken) {
            Store::U32(v) => v,
            _ => panic!("buffer {} is not a free u32 buffer", out.id),
        };
        let r = f(self, bytemuck::cast_slice_mut(&mut v));
        self.store[out.id as usize] = Store::U32(v);
        r
    }

    /// Runs `f` with the f32 buffers `outs` lent out mutably and `self` readable for the inputs.
    fn write<const N: usize, R>(
        &mut self,
        outs: [Buf; N],
        f: impl FnOnce(&Self, [&mut Vec<f32>; N]) -> R,
    ) -> R {
        let mut vs =
            outs.map(
                |b| match std::mem::replace(&mut self.store[b.id as usize], Store::Taken) {
                    Store::F32(v) => v,
                    _ => panic!("buffer {} is not a free f32 buffer", b.id),
                },
            );
        let r = f(self, vs.each_mut());
        for (b, v) in outs.iter().zip(vs) {
            self.store[b.id as usize] = Store::F32(v);
        }
        r
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
        let threads = rayon::current_num_threads();
        #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
        let threads = 1;
        format!("CPU ({threads} threads)")
    }

    fn is_gpu(&self) -> bool {
        false
    }

    fn limits(&self) -> DeviceLimits {
        DeviceLimits {
            max_binding_bytes: None,
            max_buffer_bytes: None,
            memory_bytes: available_memory(),
        }
    }

    fn alloc(&mut self, len: usize, dtype: Dtype) -> Buf {
        self.store.push(match dtype {
            Dtype::F32 => Store::F32(vec![0.0; len]),
            Dtype::U32 => Store::U32(vec![0; len]),
        });
        Buf {
            id: (self.store.len() - 1) as u32,
            len,
            dtype,
        }
    }

    fn write_f32(&mut self, buf: Buf, data: &[f32]) {
        self.write([buf], |_, [v]| v[..data.len()].copy_from_slice(data));
    }

    fn write_u32(&mut self, buf: Buf, data: &[u32]) {
        match &mut self.store[buf.id as usize] {
            Store::U32(v) => v[..data.len()].copy_from_slice(data),
            _ => panic!("buffer {} is not u32", buf.id),
        }
    }

    fn fill_zero(&mut self, buf: Buf) {
        match &mut self.store[buf.id as usize] {
            Store::F32(v) => v.fill(0.0),
            Store::U32(v) => v.fill(0),
            Store::U8(v) => v.fill(0),
            Store::Taken => unreachable!(),
        }
    }

    fn copy(&mut self, src: Buf, dst: Buf) {
        match src.dtype {
            Dtype::F32 => {
                let data = self.f32(src).to_vec();
                self.write_f32(dst, &data);
            }
            Dtype::U32 => {
                let data = self.u32(src).to_vec();
                self.write_u32(dst, &data);
            }
        }
    }

    fn flush(&mut self) {}

    fn set_profiling(&mut self, on: bool) -> bool {
        self.profile = on.then(Vec::new);
        true
    }

    fn take_profile(&mut self) -> Vec<KernelTime> {
        self.profile
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn read_f32(&mut self, buf: Buf) -> impl Future<Output = Result<Vec<f32>, Error>> {
        std::future::ready(Ok(self.f32(buf)[..buf.len].to_vec()))
    }

    fn read_u32(&mut self, buf: Buf) -> impl Future<Output = Result<Vec<u32>, Error>> {
        std::future::ready(Ok(self.u32(buf)[..buf.len].to_vec()))
    }

    fn counters(&self) -> Counters {
        Counters::default()
    }

    fn upload_images(
        &mut self,
        pixels: &[u8],
        labels: &[u16],
        chw: (usize, usize, usize),
    ) -> Result<ImageSet, Error> {
        let count = labels.len();
        let (c, h, w) = chw;
        ops::data::check_pixel_count(pixels, count, chw)?;
        self.store.push(Store::U8(pixels.to_vec()));
        let shard = Buf {
            id: (self.store.len() - 1) as u32,
            len: pixels.len(),
            dtype: Dtype::U32,
        };
        let lab = self.alloc(count, Dtype::U32);
        self.write_u32(lab, &labels.iter().map(|&l| l as u32).collect::<Vec<_>>());
        Ok(ImageSet {
            count,
            c,
            h,
            w,
            shards: vec![Shard {
                pixels: shard,
                first: 0,
                count,
            }],
            labels: lab,
        })
    }

    fn gather_batch(&mut self, set: &ImageSet, batch: BatchIndices, x: Buf, labels: Buf) {
        self.timed("gather_batch", Family::Data, |me| {
            let BatchIndices {
                indices,
                batch,
                shifted,
            } = batch;
            let idx = me.u32(indices)[..batch].to_vec();
            let shifts: Vec<Shift> = if shifted {
                me.u32(indices)[batch..2 * batch]
                    .iter()
                    .map(|&v| Shift::unpack(v))
                    .collect()
            } else {
                Vec::new()
            };
            let mut lab = vec![0u32; batch];
            me.write([x], |me, [xv]| {
                let pixels = me.u8(set.shards[0].pixels);
                ops::data::gather_batch(
                    pixels,
                    me.u32(set.labels),
                    (set.c, set.h, set.w),
                    set.count,
                    &idx,
                    &shifts,
                    xv,
                    &mut lab,
                );
            });
            me.write_u32(labels, &lab);
        })
    }

    fn conv_forward(&mut self, s: ConvShape, x: Buf, w: Buf, b: Buf, y: Buf) {
        self.timed("conv_forward", Family::ConvForward, |me| {
            me.write([y], |me, [yv]| {
                ops::conv::forward(s, me.f32(x), me.f32(w), me.f32(b), yv)
            });
        })
    }

    fn conv_forward_binary(&mut self, s: ConvShape, x: Buf, w: Buf, b: Buf, y: Buf) {
        self.timed("conv_forward_binary", Family::ConvForward, |me| {
            me.write([y], |me, [yv]| {
                ops::conv::forward_binary(s, me.f32(x), me.f32(w), me.f32(b), yv)
            })
        })
    }

    fn conv_grad_input(&mut self, s: ConvShape, dy: Buf, w: Buf, dx: Buf) {
        self.timed("conv_grad_input", Family::ConvGradInput, |me| {
            me.write([dx], |me, [d]| {
                ops::conv::grad_input(s, me.f32(dy), me.f32(w), d)
            });
        })
    }

    fn conv_grad_weight(&mut self, s: ConvShape, dy: Buf, x: Buf, dw: Buf) {
        self.timed("conv_grad_weight", Family::ConvGradWeight, |me| {
            me.write([dw], |me, [d]| {
                ops::conv::grad_weight(s, me.f32(dy), me.f32(x), d)
            });
        })
    }

    fn channel_sum(&mut self, s: ChannelShape, x: Buf, out: Buf) {
        self.timed("channel_sum", Family::BatchNorm, |me| {
            me.write([out], |me, [o]| {
                ops::batchnorm::channel_sum(s, me.f32(x), o)
            });
        })
    }

    fn dense_forward(&mut self, s: DenseShape, x: Buf, w: Buf, b: Buf, y: Buf) {
        self.timed("dense_forward", Family::Dense, |me| {
            me.write([y], |me, [yv]| {
                ops::dense::forward(s, me.f32(x), me.f32(w), me.f32(b), yv)
            });
        })
    }

    fn dense_grad_input(&mut self, s: DenseShape, dy: Buf, w: Buf, dx: Buf) {
        self.timed("dense_grad_input", Family::Dense, |me| {
            me.write([dx], |me, [d]| {
                ops::dense::grad_input(s, me.f32(dy), me.f32(w), d)
            });
        })
    }

    fn dense_grad_weight(&mut self, s: DenseShape, dy: Buf, x: Buf, dw: Buf) {
        self.timed("dense_grad_weight", Family::Dense, |me| {
            me.write([dw], |me, [d]| {
                ops::dense::grad_weight(s, me.f32(dy), me.f32(x), d)
            });
        })
    }

    fn bn_train(&mut self, bn: BatchNorm, x: Buf, y: Buf) {
        let (p, st) = (bn.params, bn.stats);
        self.timed("bn_train", Family::BatchNorm, |me| {
            me.write([y, st.batch, st.running], |me, [yv, batch, run]| {
                ops::batchnorm::train(
                    bn.shape,
                    None,
                    me.f32(x),
                    me.f32(p.gamma),
                    me.f32(p.beta),
                    yv,
                    batch,
                    run,
                )
            });
        })
    }

    fn bn_eval(&mut self, bn: BatchNorm, x: Buf, y: Buf) {
        let p = bn.params;
        self.timed("bn_eval", Family::BatchNorm, |me| {
            me.write([y], |me, [yv]| {
                ops::batchnorm::eval(
                    bn.shape,
                    None,
                    me.f32(x),
                    me.f32(p.gamma),
                    me.f32(p.beta),
                    me.f32(bn.stats.running),
                    yv,
                )
            });
        })
    }

    fn bn_backward(&mut self, bn: BatchNorm, x: Buf, dy: Buf, dx: Buf, grads: BnGrads) {
        self.timed("bn_backward", Family::BatchNorm, |me| {
            me.write([dx, grads.dgamma, grads.dbeta], |me, [d, dg, db]| {
                ops::batchnorm::backward(
                    bn.shape,
                    None,
                    me.f32(dy),
                    me.f32(x),
                    me.f32(bn.params.gamma),
                    &[],
                    me.f32(bn.stats.batch),
                    d,
                    dg,
                    db,
                )
            });
        })
    }

    fn bn_act_train(&mut self, l: BnAct, t: BnActTensors) {
        let (p, st) = (l.bn.params, l.bn.stats);
        // one pass: u is not stored (act_bn_backward recomputes it)
        self.timed("bn_act_train", Family::BatchNormAct, |me| {
            me.write([t.a, st.batch, st.running], |me, [av, batch, run]| {
                ops::batchnorm::train(
                    l.bn.shape,
                    Some(l.act),
                    me.f32(t.z),
                    me.f32(p.gamma),
                    me.f32(p.beta),
                    av,
                    batch,
                    run,
                )
            })
        })
    }

    fn bn_act_eval(&mut self, l: BnAct, t: BnActTensors) {
        let p = l.bn.params;
        self.timed("bn_act_eval", Family::BatchNormAct, |me| {
            me.write([t.a], |me, [av]| {
                ops::batchnorm::eval(
                    l.bn.shape,
                    Some(l.act),
                    me.f32(t.z),
                    me.f32(p.gamma),
                    me.f32(p.beta),
                    me.f32(l.bn.stats.running),
                    av,
                )
            })
        })
    }

    fn act_bn_backward(&mut self, l: BnAct, t: BnActTensors, g: BnActGrads) {
        let p = l.bn.params;
        self.timed("act_bn_backward", Family::BatchNormAct, |me| {
            me.write(
                [g.dz, g.params.dgamma, g.params.dbeta],
                |me, [d, dg, db]| {
                    ops::batchnorm::backward(
                        l.bn.shape,
                        Some(l.act),
                        me.f32(g.da),
                        me.f32(t.z),
                        me.f32(p.gamma),
                        me.f32(p.beta),
                        me.f32(l.bn.stats.batch),
                        d,
                        dg,
                        db,
                    )
                },
            )
        })
    }

    fn act_forward(&mut self, a: ActQuant, n: usize, x: Buf, y: Buf) {
        self.timed("act_forward", Family::Quantizers, |me| {
            me.write([y], |me, [yv]| {
                ops::quantize::act_forward(a, &me.f32(x)[..n], yv)
            });
        })
    }

    fn act_backward(&mut self, a: ActQuant, n: usize, x: Buf, dy: Buf, dx: Buf) {
        self.timed("act_backward", Family::Quantizers, |me| {
            me.write([dx], |me, [d]| {
                ops::quantize::act_backward(a, &me.f32(x)[..n], me.f32(dy), d)
            });
        })
    }

    fn bn_act_pool_train(&mut self, l: BnAct, t: BnActTensors, pool: Pooled) {
        let (p, st) = (l.bn.params, l.bn.stats);
        // one pass after the statistics, each plane pooled while in cache; neither u nor a is
        // stored (the backward recomputes u and routes through the window maxima)
        self.timed("bn_act_pool_train", Family::BatchNormAct, |me| {
            me.write_bytes(pool.window, |me, win| {
                me.write(
                    [t.a, pool.out, st.batch, st.running],
                    |me, [av, out, batch, run]| {
                        ops::batchnorm::train_pooled(
                            l.bn.shape,
                            (pool.shape.h, pool.shape.w),
                            l.act,
                            me.f32(t.z),
                            me.f32(p.gamma),
                            me.f32(p.beta),
                            av,
                            out,
                            win,
                            batch,
                            run,
                        )
                    },
                )
            })
        })
    }

    fn pool_act_bn_backward(
        &mut self,
        l: BnAct,
        t: BnActTensors,
        pool: Pooled,
        dpooled: Buf,
        g: BnActGrads,
        dbias: Buf,
    ) {
        let p = l.bn.params;
        self.timed("pool_act_bn_backward", Family::BatchNormAct, |me| {
            me.write(
                [g.dz, g.params.dgamma, g.params.dbeta, dbias],
                |me, [d, dg, db, dbi]| {
                    ops::batchnorm::backward_pooled(
                        l.bn.shape,
                        (pool.shape.h, pool.shape.w),
                        l.act,
                        me.f32(dpooled),
                        bytemuck::cast_slice(me.u32(pool.window)),
                        me.f32(t.z),
                        me.f32(p.gamma),
                        me.f32(p.beta),
                        me.f32(l.bn.stats.batch),
                        d,
                        dg,
                        db,
                        dbi,
                    )
                },
            )
        })
    }

    fn pool_forward(&mut self, s: PoolShape, x: Buf, y: Buf) {
        self.timed("pool_forward", Family::Pooling, |me| {
            me.write([y], |me, [yv]| ops::pool::forward(s, me.f32(x), yv));
        })
    }

    fn pool_backward(&mut self, s: PoolShape, x: Buf, dy: Buf, dx: Buf) {
        self.timed("pool_backward", Family::Pooling, |me| {
            me.write([dx], |me, [d]| {
                ops::pool::backward(s, me.f32(x), me.f32(dy), d)
            });
        })
    }

    fn global_pool_forward(&mut self, s: PoolShape, x: Buf, y: Buf) {
        self.timed("global_pool_forward", Family::Pooling, |me| {
            me.write([y], |me, [yv]| ops::pool::global_forward(s, me.f32(x), yv));
        })
    }

    fn global_pool_backward(&mut self, s: PoolShape, dy: Buf, dx: Buf) {
        self.timed("global_pool_backward", Family::Pooling, |me| {
            me.write([dx], |me, [d]| ops::pool::global_backward(s, me.f32(dy), d));
        })
    }

    fn weight_quantize(&mut self, q: WeightQuant, w: Buf, absmax: Buf, wq: Buf) {
        self.timed("weight_quantize", Family::Quantizers, |me| {
            me.write([absmax, wq], |me, [m, out]| {
                m[0] = ops::quantize::weight_quantize(q, me.f32(w), out)
            });
        })
    }

    fn loss(&mut self, s: LossShape, y: Buf, labels: Buf, dy: Option<Buf>, acc: Buf) {
        self.timed("loss", Family::Loss, |me| {
            let lab = me.u32(labels)[..s.batch].to_vec();
            match dy {
                Some(d) => me.write([d, acc], |me, [dv, a]| {
                    ops::loss::squared_hinge(s, me.f32(y), &lab, Some(dv), a)
                }),
                None => me.write([acc], |me, [a]| {
                    ops::loss::squared_hinge(s, me.f32(y), &lab, None, a)
                }),
            }
        })
    }

    fn adam(&mut self, rule: UpdateRule, cfg: AdamConfig, p: ParamTensors, step: Buf) {
        self.timed("adam", Family::Optimizer, |me| {
            me.write([p.value, p.m, p.v], |me, [pv, mv, vv]| {
                ops::optimizer::adam(rule, cfg, pv, me.f32(p.grad), mv, vv, me.f32(step))
            });
        })
    }

    fn sgd(&mut self, rule: UpdateRule, p: ParamTensors, step: Buf) {
        self.timed("sgd", Family::Optimizer, |me| {
            me.write([p.value, p.m], |me, [pv, vel]| {
                ops::optimizer::sgd(rule, pv, me.f32(p.grad), vel, me.f32(step))
            });
        })
    }
}

/// Memory the machine can still give: MemAvailable of /proc/meminfo on Linux; a wasm32 module
/// addresses 4 GiB at most; elsewhere unknown.
fn available_memory() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(4 << 30)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}
