//! The decoded pictures of a set, kept in one file beside it so that a second run starts in
//! seconds: `root/.qnn-cache/images-{key}.bin` for a folder, `.qnn-cache/` beside a `.zip`.
//! The key hashes what the pixels were made from (every image's path and size, with its
//! modification time on disk or its CRC-32 in a zip, and the options), so a stale cache is
//! never used, and a cache that cannot be written only costs the next run its speed.

#[cfg(not(target_arch = "wasm32"))]
use std::path::{Path, PathBuf};

#[cfg(not(target_arch = "wasm32"))]
use super::{load_scanned, load_source, scan, Entry, FolderOptions, FolderReport, Source, Tree};
use super::{FolderData, FolderSplit};
#[cfg(not(target_arch = "wasm32"))]
use crate::Error;

/// Where the cache for `key` of the set at `path` lives: `path/.qnn-cache/images-{key}.bin`
/// for a folder, `.qnn-cache/images-{key}.bin` beside a `.zip`.
#[cfg(not(target_arch = "wasm32"))]
pub fn cache_path(path: &Path, key: &str) -> PathBuf {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    dir.join(".qnn-cache")
        .join(format!("images-{}.bin", &key[..key.len().min(16)]))
}

/// [`super::load`] through the set's cache: the cache when it was made from these files with
/// these options, else the pictures (then the cache is written; a place that cannot take it
/// is fine, and `Some(why)` in the third place says why not). The report is `None` when the
/// data came from the cache.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_cached(
    path: &Path,
    opts: &FolderOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(FolderData, Option<FolderReport>, Option<String>), Error> {
    let source = Source::open(path)?;
    let tree = Tree::new(&source)?;
    let scanned = scan(&tree, opts)?;
    let key = key_of(&tree, &scanned.1, opts);
    let cache = cache_path(path, &key);
    let (d, report) = if cache.is_file() {
        // a zip's bytes and the cached pixels are not held together
        drop(scanned);
        drop(tree);
        drop(source);
        let cached = std::fs::read(&cache).ok();
        if let Some(d) = cached.and_then(|b| FolderData::from_cache_bytes(b, &key)) {
            return Ok((d, None, None));
        }
        // a cache that is not whole: the pictures again
        load_source(&Source::open(path)?, opts, progress)?
    } else {
        let loaded = load_scanned(&tree, scanned, opts, progress)?;
        drop(tree);
        drop(source);
        loaded
    };
    let unwritten = d.write_cache(&cache, &key).err().map(|e| e.to_string());
    Ok((d, Some(report), unwritten))
}

/// The cache key of the set at `path` (a folder or a `.zip`) read with `opts`.
#[cfg(not(target_arch = "wasm32"))]
pub fn cache_key(path: &Path, opts: &FolderOptions) -> Result<String, Error> {
    let source = Source::open(path)?;
    let tree = Tree::new(&source)?;
    let (_, entries, _) = scan(&tree, opts)?;
    Ok(key_of(&tree, &entries, opts))
}

#[cfg(not(target_arch = "wasm32"))]
fn key_of(tree: &Tree, entries: &[Entry], opts: &FolderOptions) -> String {
    let mut text = format!(
        "{:?}|{:?}|{}|{}|{}|{}\n",
        opts.input, opts.resize, opts.skip_bad, opts.seed, opts.test_fraction, opts.valid_fraction
    );
    for e in entries {
        text.push_str(&format!(
            "{}|{}|{}\n",
            e.path.display(),
            e.label,
            tree.fingerprint(&e.path, e.file)
        ));
    }
    crate::data::md5_hex(text.as_bytes())
}

/// The magic at the start of a cache file, with its format version.
const CACHE_MAGIC: &[u8; 8] = b"qnnimgs1";

impl FolderData {
    /// The start of the cache file, before the pixels. The file: a header (JSON: the
    /// key, shape, class names, counts), the labels (u16, little-endian: train, then test), the
    /// test pixels, then the training pixels (last, so [`FolderData::from_cache_bytes`] keeps
    /// them where they are read). `key` names what was read (the folder's files, sizes and
    /// times, and the options), so a stale cache is not used.
    pub fn cache_head(&self, key: &str) -> Vec<u8> {
        let header = serde_json::json!({
            "key": key,
            "name": self.name,
            "chw": self.chw,
            "class_names": self.class_names,
            "train": self.train.labels.len(),
            "valid": self.valid,
            "test": self.test.labels.len(),
        })
        .to_string();
        let mut head = Vec::with_capacity(16 + header.len());
        head.extend_from_slice(CACHE_MAGIC);
        head.extend_from_slice(&(header.len() as u64).to_le_bytes());
        head.extend_from_slice(header.as_bytes());
        for l in self.train.labels.iter().chain(&self.test.labels) {
            head.extend_from_slice(&l.to_le_bytes());
        }
        head
    }

    /// Writes the cache file for `key` at `path`, atomically, without a second copy of the
    /// pixels.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_cache(&self, path: &Path, key: &str) -> Result<(), Error> {
        let head = self.cache_head(key);
        crate::files::write_atomic_parts(path, &[&head, &self.test.pixels, &self.train.pixels])
    }

    /// The cache file's bytes in one buffer (tests; [`FolderData::write_cache`] writes them).
    pub fn to_cache_bytes(&self, key: &str) -> Vec<u8> {
        let head = self.cache_head(key);
        [head.as_slice(), &self.test.pixels, &self.train.pixels].concat()
    }

    /// Reads [`FolderData::to_cache_bytes`], keeping the training pixels in `bytes`' own
    /// allocation; `None` when the bytes are not such a file, are truncated, or were made for
    /// another `key`.
    pub fn from_cache_bytes(mut bytes: Vec<u8>, key: &str) -> Option<FolderData> {
        let rest = bytes.strip_prefix(CACHE_MAGIC)?;
        let n = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
        let header: serde_json::Value =
            serde_json::from_slice(rest.get(8..8usize.checked_add(n)?)?).ok()?;
        if header["key"].as_str()? != key {
            return None;
        }
        let name = header["name"].as_str()?.to_string();
        let chw: [usize; 3] = serde_json::from_value(header["chw"].clone()).ok()?;
        let class_names: Vec<String> =
            serde_json::from_value(header["class_names"].clone()).ok()?;
        let count = |k: &str| header[k].as_u64().map(|v| v as usize);
        let (n_train, valid, n_test) = (count("train")?, count("valid")?, count("test")?);
        let len = chw.iter().try_fold(1usize, |a, &b| a.checked_mul(b))?;
        let labels_at = CACHE_MAGIC.len() + 8 + n;
        let labels_end = labels_at.checked_add(n_train.checked_add(n_test)?.checked_mul(2)?)?;
        let labels: Vec<u16> = bytes
            .get(labels_at..labels_end)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let test_end = labels_end.checked_add(n_test.checked_mul(len)?)?;
        let test_pixels = bytes.get(labels_end..test_end)?.to_vec();
        if bytes.len().checked_sub(test_end)? != n_train.checked_mul(len)?
            || valid > n_train
            || labels.iter().any(|&l| l as usize >= class_names.len())
        {
            return None;
        }
        bytes.drain(..test_end);
        Some(FolderData {
            name,
            chw,
            class_names,
            train: FolderSplit {
                pixels: bytes,
                labels: labels[..n_train].to_vec(),
            },
            valid,
            test: FolderSplit {
                pixels: test_pixels,
                labels: labels[n_train..].to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache file round-trips, and a truncated, altered or other-key one is not used.
    #[test]
    fn cache_round_trips_and_refuses_what_it_is_not() {
        let d = FolderData {
            name: "set".into(),
            chw: [1, 2, 2],
            class_names: vec!["a".into(), "b".into()],
            train: FolderSplit {
                pixels: vec![1, 2, 3, 4, 5, 6, 7, 8],
                labels: vec![0, 1],
            },
            valid: 1,
            test: FolderSplit {
                pixels: vec![9, 9, 9, 9],
                labels: vec![1],
            },
        };
        let bytes = d.to_cache_bytes("k");
        assert_eq!(
            FolderData::from_cache_bytes(bytes.clone(), "k"),
            Some(d.clone())
        );
        assert_eq!(FolderData::from_cache_bytes(bytes.clone(), "other"), None);
        let short = bytes[..bytes.len() - 1].to_vec();
        assert_eq!(FolderData::from_cache_bytes(short, "k"), None);
        let mut bad = bytes.clone();
        let at = bad.len() - 8 - 4 - 2; // the test label, before 4 test and 8 train pixels
        bad[at] = 7;
        assert_eq!(FolderData::from_cache_bytes(bad, "k"), None);
    }
}
