// Batch assembly on the device: x[b] = pixels of image indices[b] scaled to x·2/255 − 1, flipped
// left-right when indices[b] ≥ count (then image indices[b] − count), then, when P.shifted, moved
// by the shift indices[batch + b] (dy in its high 16 bits, dx in its low 16, two's complement:
// x(ch, i, j) reads (ch, i + dy, j + dx) of the flipped image, pixel 0 outside it). Pixels are u8
// packed four to a u32, in shards no larger than the storage-binding limit: one dispatch per
// shard, each writing the batch entries whose image it holds.

struct Params {
    batch: u32, c: u32, h: u32, w: u32,
    count: u32, shard_start: u32, shard_count: u32, shifted: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> all_labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;

@compute @workgroup_size(WG, 1, 1)
fn gather_batch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let image_len = P.c * P.h * P.w;
    if (i >= P.batch * image_len) { return; }
    let b = i / image_len;
    var img = indices[b];
    let flip = img >= P.count;
    if (flip) { img -= P.count; }
    if (img < P.shard_start || img >= P.shard_start + P.shard_count) { return; }
    let r = i % image_len;
    let plane = P.h * P.w;
    var row = (r % plane) / P.w;
    var col = r % P.w;
    var inside = true;
    if (P.shifted != 0u) {
        let s = indices[P.batch + b];
        // arithmetic shifts of the i32 sign-extend each half
        let dy = bitcast<i32>(s) >> 16u;
        let dx = bitcast<i32>(s << 16u) >> 16u;
        let sy = i32(row) + dy;
        let sx = i32(col) + dx;
        inside = sy >= 0 && sy < i32(P.h) && sx >= 0 && sx < i32(P.w);
        if (inside) {
            row = u32(sy);
            col = u32(sx);
        }
    }
    var v = 0u;
    if (inside) {
        if (flip) { col = P.w - 1u - col; }
        let byte = (img - P.shard_start) * image_len + (r - r % plane) + row * P.w + col;
        v = (pixels[byte / 4u] >> (8u * (byte % 4u))) & 0xffu;
    }
    x[i] = f32(v) * (2.0 / 255.0) - 1.0;
    if (r == 0u) { labels[b] = all_labels[img]; }
}
