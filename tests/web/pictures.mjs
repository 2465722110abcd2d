// Small sets of pictures for the page's test, made here rather than committed: PNGs written by a
// minimal encoder (node's zlib), folders of them on disk, and a store-only .zip of such a folder.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
/** CRC-32 (PNG's and zip's). */
export function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A PNG of w×h pixels, `channels` 1 (grey) or 3 (RGB); `pixel(x, y)` gives a value or [r, g, b]. */
export function png(w, h, channels, pixel) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = channels === 1 ? 0 : 2; // bit depth 8; grey or truecolour
  const raw = Buffer.alloc(h * (1 + w * channels));
  for (let y = 0; y < h; y++) {
    raw[y * (1 + w * channels)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const v = [pixel(x, y)].flat();
      for (let k = 0; k < channels; k++) raw[y * (1 + w * channels) + 1 + x * channels + k] = v[k];
    }
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

// a deterministic noise source, so every picture differs and the set is the same every run
function noise(seed) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

/**
 * Three easy classes of 16×16 pictures, `per` each: [path, PNG bytes] below `name/`.
 * Grey: horizontal stripes, vertical stripes, a bright square; RGB: mostly red, green, blue.
 */
export function pictureSet(name, { per = 20, rgb = false } = {}) {
  const classes = rgb ? ["red", "green", "blue"] : ["horizontal", "vertical", "square"];
  const files = [];
  classes.forEach((cls, label) => {
    for (let i = 0; i < per; i++) {
      const r = noise(label * 1000 + i + 1), off = Math.floor(r() * 4);
      const pixel = rgb
        ? () => [0, 1, 2].map((k) => (k === label ? 150 + r() * 100 : r() * 90))
        : (x, y) => {
          const on = label === 0 ? (y + off) % 4 < 2 : label === 1 ? (x + off) % 4 < 2 : x >= 4 + off && x < 10 + off && y >= 4 && y < 12;
          return Math.round((on ? 200 : 30) + r() * 40);
        };
      files.push([`${name}/${cls}/${String(i).padStart(3, "0")}.png`, png(16, 16, rgb ? 3 : 1, pixel)]);
    }
  });
  return files;
}

/** Writes [path, bytes] files below `dir` (emptied first); returns `dir`. */
export function writeFiles(dir, files) {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const [p, bytes] of files) {
    const full = path.join(dir, p);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, bytes);
  }
  return dir;
}

/** A .zip (stored, not deflated) of [path, bytes] files, as zipping a folder makes one. */
export function zip(files) {
  const locals = [], central = [];
  let offset = 0;
  for (const [p, bytes] of files) {
    const name = Buffer.from(p, "utf8"), crc = crc32(bytes);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(bytes.length, 18); local.writeUInt32LE(bytes.length, 22);
    local.writeUInt16LE(name.length, 26);
    const cen = Buffer.alloc(46);
    cen.writeUInt32LE(0x02014b50, 0); cen.writeUInt16LE(20, 4); cen.writeUInt16LE(20, 6); cen.writeUInt16LE(0x0800, 8);
    cen.writeUInt32LE(crc, 16); cen.writeUInt32LE(bytes.length, 20); cen.writeUInt32LE(bytes.length, 24);
    cen.writeUInt16LE(name.length, 28); cen.writeUInt32LE(offset, 42);
    locals.push(local, name, bytes);
    central.push(cen, name);
    offset += 30 + name.length + bytes.length;
  }
  const dir = Buffer.concat(central), end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(files.length, 8); end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(dir.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}
