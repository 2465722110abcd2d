//! `Backend` for the GPU: each op forwards to its launcher in `crate::ops::<family>`.

use super::GpuBackend;
use crate::backend::*;
use crate::ops;
use crate::quant::{ActQuant, WeightQuant};
use crate::Error;

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        format!(
            "GPU: {} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    fn is_gpu(&self) -> bool {
        true
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn set_profiling(&mut self, on: bool) -> bool {
        GpuBackend::set_profiling(self, on)
    }

    fn take_profile(&mut self) -> Vec<KernelTime> {
        GpuBackend::take_profile(self)
    }

    fn limits(&self) -> DeviceLimits {
        let l = self.device.limits();
        // wgpu does not say how much memory the GPU has
        DeviceLimits {
            max_binding_bytes: Some(l.max_storage_buffer_binding_size),
            max_buffer_bytes: Some(l.max_buffer_size),
            memory_bytes: None,
        }
    }

    fn alloc(&mut self, len: usize, dtype: Dtype) -> Buf {
        // wgpu zero-initializes new buffers
        self.alloc_bytes(len as u64 * 4, len, dtype)
    }

    fn write_f32(&mut self, buf: Buf, data: &[f32]) {
        self.write_bytes(buf, bytemuck::cast_slice(data));
    }

    fn write_u32(&mut self, buf: Buf, data: &[u32]) {
        self.write_bytes(buf, bytemuck::cast_slice(data));
    }

    fn fill_zero(&mut self, buf: Buf) {
        self.record_clear(buf);
    }

    fn copy(&mut self, src: Buf, dst: Buf) {
        self.record_copy(src, dst, (src.len.min(dst.len) as u64 * 4).max(4));
    }

    fn flush(&mut self) {
        self.submit(None);
    }

    async fn read_f32(&mut self, buf: Buf) -> Result<Vec<f32>, Error> {
        let bytes = self.read_bytes(buf).await?;
        Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes)[..buf.len].to_vec())
    }

    async fn read_u32(&mut self, buf: Buf) -> Result<Vec<u32>, Error> {
        let bytes = self.read_bytes(buf).await?;
        Ok(bytemuck::pod_collect_to_vec::<u8, u32>(&bytes)[..buf.len].to_vec())
    }

    fn counters(&self) -> Counters {
        self.counters_now()
    }

    fn upload_images(
        &mut self,
        pixels: &[u8],
        labels: &[u16],
        chw: (usize, usize, usize),
    ) -> Result<ImageSet, Error> {
        let count = labels.len();
        let (c, h, w) = chw;
        let len = c * h * w;
        ops::data::check_pixel_count(pixels, count, chw)?;
        let per = ops::data::images_per_shard(len, self.max_binding_bytes.min(u32::MAX as u64));
        let mut shards = Vec::new();
        for start in (0..count.max(1)).step_by(per) {
            let n = per.min(count - start.min(count));
            let bytes = &pixels[start * len..(start + n) * len];
            let b = self.alloc_bytes(bytes.len() as u64, bytes.len().div_ceil(4), Dtype::U32);
            self.write_bytes(b, bytes);
            shards.push(Shard {
                pixels: b,
                first: start,
                count: n,
            });
        }
        let lab = self.alloc(count, Dtype::U32);
        self.write_u32(lab, &labels.iter().map(|&l| l as u32).collect::<Vec<_>>());
        Ok(ImageSet {
            count,
            c,
            h,
            w,
            shards,
            labels: lab,
        })
    }

    fn gather_batch(&mut self, set: &ImageSet, batch: BatchIndices, x: Buf, labels: Buf) {
        ops::data::gpu_gather_batch(self, set, batch, x, labels);
    }

    fn conv_forward(&mut self, s: ConvShape, x: Buf, w: Buf, b: Buf, y: Buf) {
        ops::conv::gpu_forward(self, s, x, w, b, y);
    }

    fn conv_grad_input(&mut self, s: ConvShape, dy: Buf, w: Buf, dx: Buf) {
        ops::conv::gpu_grad_input(self, s, dy, w, dx);
    }

    fn conv_grad_weight(&mut self, s: ConvShape, dy: Buf, x: Buf, dw: Buf) {
        ops::conv::gpu_grad_weight(self, s, dy, x, dw);
    }

    fn channel_sum(&mut self, s: ChannelShape, x: Buf, out: Buf) {
        ops::batchnorm::gpu_channel_sum(self, s, x, out);
    }

    fn dense_forward(&mut self, s: DenseShape, x: Buf, w: Buf, b: Buf, y: Buf) {
        ops::dense::gpu_forward(self, s, x, w, b, y);
    }

    fn dense_grad_input(&mut self, s: DenseShape, dy: Buf, w: Buf, dx: Buf) {
        ops::dense::gpu_grad_input(self, s, dy, w, dx);
    }

    fn dense_grad_weight(&mut self, s: DenseShape, dy: Buf, x: Buf, dw: Buf) {
        ops::dense::gpu_grad_weight(self, s, dy, x, dw);
    }

    fn bn_train(&mut self, bn: BatchNorm, x: Buf, y: Buf) {
        ops::batchnorm::gpu_train(self, bn, None, x, y);
    }

    fn bn_eval(&mut self, bn: BatchNorm, x: Buf, y: Buf) {
        ops::batchnorm::gpu_eval(self, bn, None, x, y);
    }

    fn bn_backward(&mut self, bn: BatchNorm, x: Buf, dy: Buf, dx: Buf, grads: BnGrads) {
        ops::batchnorm::gpu_backward(self, bn, None, x, dy, dx, grads);
    }

    // Batch norm and its activation fused (shaders/batchnorm*.wgsl with `act`): u = bn(z) is
    // neither stored nor read back; the backward recomputes it. Two passes over memory fewer
    // forward and three backward than the two ops, and one dispatch fewer each way.
    fn bn_act_train(&mut self, l: BnAct, t: BnActTensors) {
        ops::batchnorm::gpu_train(self, l.bn, Some(l.act), t.z, t.a);
    }

    fn bn_act_eval(&mut self, l: BnAct, t: BnActTensors) {
        ops::batchnorm::gpu_eval(self, l.bn, Some(l.act), t.z, t.a);
    }

    fn act_bn_backward(&mut self, l: BnAct, t: BnActTensors, g: BnActGrads) {
        ops::batchnorm::gpu_backward(self, l.bn, Some(l.act), t.z, g.da, g.dz, g.params);
    }

    // ... and the 2×2 pool too: act(bn(z)) is not stored, only the pooled values and a byte per
    // window (which input was the maximum), which the backward routes the pooled gradient by.
    fn bn_act_pool_train(&mut self, l: BnAct, t: BnActTensors, pool: Pooled) {
        if pool.shape.y_len() == 0 {
            // nothing to pool: a written, as the separate ops leave it
            return bn_act_pool_separately(self, l, t, pool);
        }
        ops::batchnorm::gpu_train_pool(self, l, t.z, pool);
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
        if pool.shape.y_len() == 0 {
            return pool_act_bn_backward_separately(self, l, t, pool, dpooled, g, dbias);
        }
        ops::batchnorm::gpu_backward_pool(self, l, t.z, pool, dpooled, g.dz, g.params, dbias);
    }

    fn act_forward(&mut self, a: ActQuant, n: usize, x: Buf, y: Buf) {
        ops::quantize::gpu_act_forward(self, a, n, x, y);
    }

    fn act_backward(&mut self, a: ActQuant, n: usize, x: Buf, dy: Buf, dx: Buf) {
        ops::quantize::gpu_act_backward(self, a, n, x, dy, dx);
    }

    fn pool_forward(&mut self, s: PoolShape, x: Buf, y: Buf) {
        ops::pool::gpu_forward(self, s, x, y);
    }

    fn pool_backward(&mut self, s: PoolShape, x: Buf, dy: Buf, dx: Buf) {
        ops::pool::gpu_backward(self, s, x, dy, dx);
    }

    fn global_pool_forward(&mut self, s: PoolShape, x: Buf, y: Buf) {
        ops::pool::gpu_global_forward(self, s, x, y);
    }

    fn global_pool_backward(&mut self, s: PoolShape, dy: Buf, dx: Buf) {
        ops::pool::gpu_global_backward(self, s, dy, dx);
    }

    fn weight_quantize(&mut self, q: WeightQuant, w: Buf, absmax: Buf, wq: Buf) {
        ops::quantize::gpu_weight_quantize(self, q, w, absmax, wq);
    }

    fn loss(&mut self, s: LossShape, y: Buf, labels: Buf, dy: Option<Buf>, acc: Buf) {
        ops::loss::gpu_squared_hinge(self, s, y, labels, dy, acc);
    }

    fn adam(&mut self, rule: UpdateRule, cfg: AdamConfig, p: ParamTensors, step: Buf) {
        ops::optimizer::gpu_adam(self, rule, cfg, p, step);
    }

    fn sgd(&mut self, rule: UpdateRule, p: ParamTensors, step: Buf) {
        ops::optimizer::gpu_sgd(self, rule, p, step);
    }
}
