//! Your own images: a folder of labelled pictures, `root/<class name>/*.png|jpg|bmp|gif|webp`
//! (the layout of torchvision's `ImageFolder` and Keras' `image_dataset_from_directory`), turned
//! into a data set of one image size and channel count.
//!
//! - **Classes**: one sub-folder each, in name order (their names become the class names; the
//!   label of an image is its folder's rank). From 2 to 1,000 classes. Within a split, images
//!   are in file-name order across classes (so a set written from numbered images, as `qnn
//!   export-images` writes one, keeps the original order).
//! - **Splits**: `train/`, `val/` and `test/` sub-folders (each holding the class folders) when
//!   present; otherwise every class's images are split by fixed, seeded fractions (10 % test,
//!   10 % validation by default), so the same folder and seed always give the same split.
//! - **Shape**: `input` [c, h, w] when given, else the most common image size (width × height)
//!   and channel count (grey when every image is grey, else RGB). Other sizes are resized
//!   (bilinear: the whole picture stretched, or its centre cropped to the target's aspect first)
//!   and converted; the report says how many.
//! - **What is refused** (naming the file): an unreadable, truncated or undecodable image (skipped
//!   and listed with `skip_bad`), an image that declares more than [`MAX_SIDE`] pixels a side (a
//!   decompression bomb is refused before its pixels are allocated), a class folder with no
//!   images, a single class, no images at all, a folder name that is not UTF-8. Files that are
//!   not images (by their first bytes) are skipped and counted.
//!
//! Decoding runs in parallel (rayon); each decoded image is resized into its place in one pixel
//! buffer, so no image is held twice. [`FolderData`] can be written to and read from a cache file
//! (`write_cache` / `from_cache_bytes`), which `qnn train` keeps beside the data.

mod cache;
mod source;

use std::collections::BTreeMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::path::PathBuf;

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};

use crate::Error;
#[cfg(not(target_arch = "wasm32"))]
pub use cache::{cache_key, cache_path, load_cached};
pub use source::{is_zip, Source, MAX_FILE_BYTES, MAX_ZIP_BYTES};
use source::{FileRef, ReadSeek, Tree};

/// The most pixels a side an image may declare: larger ones are refused before decoding.
pub const MAX_SIDE: u32 = 16_384;

/// Most classes a folder may hold.
pub const MAX_CLASSES: usize = 1_000;

/// How an image of another size becomes the input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Resize {
    /// The whole picture, stretched to the target (bilinear).
    #[default]
    Stretch,
    /// The largest centred region of the target's aspect ratio, then resized (bilinear).
    CenterCrop,
}

impl std::str::FromStr for Resize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stretch" => Ok(Resize::Stretch),
            "crop" | "center-crop" => Ok(Resize::CenterCrop),
            other => Err(format!("resize '{other}': use stretch or crop")),
        }
    }
}

/// How to read a folder.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderOptions {
    /// The network's input [c, h, w]; `None`: the most common size and channel count.
    pub input: Option<[usize; 3]>,
    /// How other sizes are resized.
    pub resize: Resize,
    /// Skip (and list) images that cannot be decoded instead of refusing the folder.
    pub skip_bad: bool,
    /// Seeds the split of a folder without `train/` / `test/` sub-folders.
    pub seed: u64,
    /// Share of each class for the test split (no `test/` sub-folder).
    pub test_fraction: f64,
    /// Share of each class for validation (no `val/` sub-folder).
    pub valid_fraction: f64,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            input: None,
            resize: Resize::Stretch,
            skip_bad: false,
            seed: 1234,
            test_fraction: 0.1,
            valid_fraction: 0.1,
        }
    }
}

/// Images of one split: `pixels` [n, c, h, w] (u8, NCHW), `labels` [n].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderSplit {
    /// The images, c·h·w bytes each.
    pub pixels: Vec<u8>,
    /// Each image's class, 0 .. classes.
    pub labels: Vec<u16>,
}

/// A folder read into one image shape.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderData {
    /// The set's name: its folder's, or its zip's without `.zip` (model files start with it).
    pub name: String,
    /// Image shape [c, h, w].
    pub chw: [usize; 3],
    /// The class names, in label order.
    pub class_names: Vec<String>,
    /// Training images, the validation images last.
    pub train: FolderSplit,
    /// How many of `train`'s last images validate.
    pub valid: usize,
    /// Test images.
    pub test: FolderSplit,
}

/// What reading a folder found, for the person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderReport {
    /// Images read.
    pub images: usize,
    /// Files that are not images (skipped), and one of them.
    pub not_images: usize,
    /// An example of a file that was not an image.
    pub not_image_example: Option<PathBuf>,
    /// Images that could not be decoded and were skipped (`skip_bad`), with why.
    pub bad: Vec<(PathBuf, String)>,
    /// Images of another size than the input, resized.
    pub resized: usize,
    /// Images of another channel count, converted (grey ↔ RGB, alpha dropped).
    pub converted: usize,
    /// How the split was made: `folders` (train/val/test) or `seeded fractions`.
    pub split: String,
}

impl std::fmt::Display for FolderReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} images ({} split)", self.images, self.split)?;
        if self.resized > 0 {
            write!(f, ", {} resized", self.resized)?;
        }
        if self.converted > 0 {
            write!(f, ", {} converted to the input's channels", self.converted)?;
        }
        if self.not_images > 0 {
            write!(f, ", {} files that are not images skipped", self.not_images)?;
            if let Some(e) = &self.not_image_example {
                write!(f, " (e.g. {})", e.display())?;
            }
        }
        if !self.bad.is_empty() {
            write!(f, ", {} unreadable images skipped", self.bad.len())?;
        }
        Ok(())
    }
}

/// One image file found, with its class and split.
#[derive(Clone, Debug)]
struct Entry {
    /// Its path, for messages and its order within a split.
    path: PathBuf,
    file: FileRef,
    label: u16,
    split: Part,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Train,
    Valid,
    Test,
}

/// A file's name as text for messages (lossy where it is not UTF-8).
fn shown(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// A seeded shuffle (SplitMix64), the same on every platform.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The split a top folder's name stands for (`train/`, `val/`, `test/` and their variants).
fn split_of(name: &str) -> Option<Part> {
    match name.to_ascii_lowercase().as_str() {
        "train" | "training" => Some(Part::Train),
        "val" | "valid" | "validation" => Some(Part::Valid),
        "test" | "testing" => Some(Part::Test),
        _ => None,
    }
}

/// What [`scan`] finds: the class names, every file with its class and split, and how the split
/// was made.
type Scanned = (Vec<String>, Vec<Entry>, String);

/// Lists a set's images with their classes and splits (nothing decoded).
fn scan(tree: &Tree, opts: &FolderOptions) -> Result<Scanned, Error> {
    let root = tree.root();
    let top = tree.subfolders(&root)?;
    let find = |part: Part| {
        top.iter()
            .find(|(n, _)| split_of(n) == Some(part))
            .map(|(_, p)| p.clone())
    };
    let mut entries = Vec::new();
    let class_names: Vec<String>;
    let how;
    if let Some(train_dir) = find(Part::Train) {
        let classes = tree.subfolders(&train_dir)?;
        class_names = classes.iter().map(|(n, _)| n.clone()).collect();
        let rank = |name: &str| class_names.iter().position(|c| c == name);
        for part in [Part::Train, Part::Valid, Part::Test] {
            let Some(dir) = find(part) else { continue };
            for (name, class_dir) in tree.subfolders(&dir)? {
                let label = rank(&name).ok_or_else(|| {
                    Error::Data(format!(
                        "{}: class '{name}' is not among the training classes ({})",
                        shown(&class_dir.path),
                        shown(&train_dir.path)
                    ))
                })?;
                for (path, file) in tree.files(&class_dir)? {
                    entries.push(Entry {
                        path,
                        file,
                        label: label as u16,
                        split: part,
                    });
                }
            }
        }
        how = "folders".to_string();
    } else {
        class_names = top.iter().map(|(n, _)| n.clone()).collect();
        for (label, (_, dir)) in top.iter().enumerate() {
            let mut found: Vec<Entry> = tree
                .files(dir)?
                .into_iter()
                .map(|(path, file)| Entry {
                    path,
                    file,
                    label: label as u16,
                    split: Part::Train,
                })
                .collect();
            // per class, so every class is in every split
            shuffle(
                &mut found,
                opts.seed ^ (label as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
            let n = found.len();
            let n_test = (n as f64 * opts.test_fraction).round() as usize;
            let n_valid = (n as f64 * opts.valid_fraction).round() as usize;
            for (i, e) in found.iter_mut().enumerate() {
                e.split = if i < n_test {
                    Part::Test
                } else if i < n_test + n_valid {
                    Part::Valid
                } else {
                    Part::Train
                };
            }
            entries.extend(found);
        }
        how = format!(
            "seeded fractions: {:.0} % test, {:.0} % validation, seed {}",
            opts.test_fraction * 100.0,
            opts.valid_fraction * 100.0,
            opts.seed
        );
    }
    let root = shown(&root.path);
    match class_names.len() {
        0 => {
            return Err(Error::Data(format!(
            "{root}: no class folders (a folder per class of images is expected: root/<class>/*.png)"
        )))
        }
        1 => {
            return Err(Error::Data(format!(
                "{root}: a single class ('{}'): a classifier needs at least 2 class folders",
                class_names[0]
            )))
        }
        n if n > MAX_CLASSES => {
            return Err(Error::Data(format!(
                "{root}: {n} class folders, more than the {MAX_CLASSES} supported"
            )))
        }
        _ => {}
    }
    Ok((class_names, entries, how))
}

/// A file's format by its first bytes, if it is an image qnn reads.
fn image_format(tree: &Tree, e: &Entry) -> Result<Option<image::ImageFormat>, String> {
    let head = tree.head(&e.path, e.file)?;
    Ok(image::guess_format(&head).ok().filter(|f| {
        use image::ImageFormat::*;
        matches!(f, Png | Jpeg | Bmp | Gif | WebP)
    }))
}

/// The limits every decode runs under: [`MAX_SIDE`] a side, and no more memory than such an
/// image needs.
fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(4 * MAX_SIDE as u64 * MAX_SIDE as u64 / 4);
    l
}

/// Opens an image under [`limits`]: its declared size (checked first), and a decoder.
fn reader<'t>(tree: &'t Tree, e: &Entry) -> Result<ImageReader<Box<dyn ReadSeek + 't>>, String> {
    let mut r = ImageReader::new(tree.open(&e.path, e.file)?)
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    r.limits(limits());
    Ok(r)
}

fn decode_error(e: image::ImageError) -> String {
    match e {
        image::ImageError::Limits(_) => format!(
            "it declares more than {MAX_SIDE}×{MAX_SIDE} pixels or more memory than such an image needs (a decompression bomb?); qnn does not decode it"
        ),
        other => format!("cannot be decoded ({other})"),
    }
}

/// Writes a decoded image into `out` as `chw` pixels (u8, channel-major), resized by `resize`
/// and converted to grey or RGB; returns whether it was resized and whether its channels were
/// converted.
pub fn decode_into(
    img: DynamicImage,
    chw: [usize; 3],
    resize: Resize,
    out: &mut [u8],
) -> (bool, bool) {
    let [c, h, w] = chw;
    let grey_source = !img.color().has_color();
    let converted = (c == 1) != grey_source || img.color().has_alpha();
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let resized = (iw, ih) != (w, h);
    let img = if !resized {
        img
    } else {
        let img = match resize {
            Resize::Stretch => img,
            Resize::CenterCrop => {
                // the largest centred window of the target's aspect
                let (tw, th) = if iw * h > ih * w {
                    ((ih * w).div_ceil(h).max(1), ih)
                } else {
                    (iw, (iw * h).div_ceil(w).max(1))
                };
                let (tw, th) = (tw.min(iw), th.min(ih));
                img.crop_imm(
                    ((iw - tw) / 2) as u32,
                    ((ih - th) / 2) as u32,
                    tw as u32,
                    th as u32,
                )
            }
        };
        img.resize_exact(w as u32, h as u32, FilterType::Triangle)
    };
    if c == 1 {
        let g = img.to_luma8();
        out[..h * w].copy_from_slice(g.as_raw());
    } else {
        let rgb = img.to_rgb8();
        for (p, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            for ch in 0..3 {
                out[ch * h * w + p] = px[ch];
            }
        }
    }
    (resized, converted)
}

/// Reads a folder of labelled images, or a `.zip` of one (see the module's doc).
/// `progress(done, total)` is called as images are decoded.
#[cfg(not(target_arch = "wasm32"))]
pub fn load(
    path: &Path,
    opts: &FolderOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(FolderData, FolderReport), Error> {
    load_source(&Source::open(path)?, opts, progress)
}

/// Reads a set of labelled images from anywhere ([`Source`]), as [`load`] does.
pub fn load_source(
    source: &Source,
    opts: &FolderOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(FolderData, FolderReport), Error> {
    let tree = Tree::new(source)?;
    let scanned = scan(&tree, opts)?;
    load_scanned(&tree, scanned, opts, progress)
}

/// [`load_source`] of a set already listed ([`scan`]'s classes, entries and split).
fn load_scanned(
    tree: &Tree,
    (class_names, entries, split): Scanned,
    opts: &FolderOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(FolderData, FolderReport), Error> {
    let root = tree.root().path;
    let root = root.as_path();
    let mut report = FolderReport {
        split,
        ..Default::default()
    };
    // which files are images: their first bytes (in parallel: 100,000 opens)
    let kinds = crate::par::map(entries.len(), |i| image_format(tree, &entries[i]));
    let mut images: Vec<Entry> = Vec::with_capacity(entries.len());
    for (e, k) in entries.into_iter().zip(kinds) {
        match k {
            Ok(Some(_)) => images.push(e),
            Ok(None) => {
                report.not_images += 1;
                report.not_image_example.get_or_insert(e.path);
            }
            Err(why) if opts.skip_bad => report.bad.push((e.path, why)),
            Err(why) => {
                return Err(Error::Data(format!(
                    "{}: cannot be read ({why}); --skip-bad-images skips such files",
                    shown(&e.path)
                )))
            }
        }
    }
    // every class has images
    let mut per_class = vec![0usize; class_names.len()];
    for e in &images {
        per_class[e.label as usize] += 1;
    }
    if let Some(k) = per_class.iter().position(|&n| n == 0) {
        return Err(Error::Data(format!(
            "{}: class '{}' has no images (PNG, JPEG, BMP, GIF or WebP): add some or remove its folder",
            shown(root),
            class_names[k]
        )));
    }
    // the input shape: given, or the most common size and channel count, from the headers
    let chw = match opts.input {
        Some(chw) => chw,
        None => {
            let dims = crate::par::map(images.len(), |i| header(tree, &images[i]));
            let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
            let mut colour = 0usize;
            for (e, d) in images.iter().zip(&dims) {
                match d {
                    Ok((w, h, grey)) => {
                        *sizes.entry((*w, *h)).or_default() += 1;
                        colour += !grey as usize;
                    }
                    Err(why) if !opts.skip_bad => {
                        return Err(Error::Data(format!(
                            "{}: {why}; --skip-bad-images skips such files",
                            shown(&e.path)
                        )))
                    }
                    Err(_) => {}
                }
            }
            let Some((&(w, h), _)) = sizes
                .iter()
                .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
            else {
                return Err(Error::Data(format!("{}: no readable images", shown(root))));
            };
            [if colour > 0 { 3 } else { 1 }, h as usize, w as usize]
        }
    };
    let [c, h, w] = chw;
    if !(c == 1 || c == 3) || h == 0 || w == 0 || h > 4096 || w > 4096 {
        return Err(Error::Config(format!(
            "input {c}×{h}×{w}: give 1 (grey) or 3 (RGB) channels and 1 to 4096 pixels a side"
        )));
    }
    let len = c * h * w;
    // decode every image into its place
    // the final order first: train, validation (last in train), test; within a split, images
    // in file-name order across classes (a set written from numbered images keeps their order,
    // so it trains the same batches as the original)
    images.sort_by(|a, b| {
        (a.split, a.path.file_name(), a.label).cmp(&(b.split, b.path.file_name(), b.label))
    });
    // decode every image into its place in one buffer: no image is held twice
    let total = images.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut pixels = vec![0u8; total * len];
    let outcome = crate::par::map_chunks(&mut pixels, len, |i, out| {
        let img = reader(tree, &images[i])?.decode().map_err(decode_error)?;
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if d.is_multiple_of(256) || d == total {
            progress(d, total);
        }
        Ok::<_, String>(decode_into(img, chw, opts.resize, out))
    });
    let mut keep = Vec::with_capacity(total);
    for (e, o) in images.iter().zip(outcome) {
        match o {
            Ok((resized, converted)) => {
                report.resized += resized as usize;
                report.converted += converted as usize;
                keep.push(true);
            }
            Err(why) if opts.skip_bad => {
                report.bad.push((e.path.clone(), why));
                keep.push(false);
            }
            Err(why) => {
                return Err(Error::Data(format!(
                    "{}: {why}; --skip-bad-images skips such files",
                    shown(&e.path)
                )))
            }
        }
    }
    // skipped images out, in place
    let mut kept = 0;
    for (i, &k) in keep.iter().enumerate() {
        if k {
            if kept != i {
                pixels.copy_within(i * len..(i + 1) * len, kept * len);
            }
            kept += 1;
        }
    }
    pixels.truncate(kept * len);
    let labels: Vec<(u16, Part)> = images
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(e, _)| (e.label, e.split))
        .collect();
    let n_test = labels.iter().filter(|l| l.1 == Part::Test).count();
    let n_train = labels.len() - n_test;
    let test_pixels = pixels.split_off(n_train * len); // the test split, the smaller part
    let data = FolderData {
        name: tree.set_name(),
        chw,
        class_names,
        train: FolderSplit {
            pixels,
            labels: labels[..n_train].iter().map(|l| l.0).collect(),
        },
        valid: labels.iter().filter(|l| l.1 == Part::Valid).count(),
        test: FolderSplit {
            pixels: test_pixels,
            labels: labels[n_train..].iter().map(|l| l.0).collect(),
        },
    };
    report.images = data.train.labels.len() + data.test.labels.len();
    if report.images == 0 {
        return Err(Error::Data(format!("{}: no readable images", shown(root))));
    }
    if data.test.labels.is_empty() {
        return Err(Error::Data(format!(
            "{}: no test images (a test/ folder, or a test fraction above 0)",
            shown(root)
        )));
    }
    Ok((data, report))
}

/// An image's declared width, height and whether it is grey, from its header alone (under
/// [`limits`]: a declared size beyond them is refused here).
fn header(tree: &Tree, e: &Entry) -> Result<(u32, u32, bool), String> {
    use image::ImageDecoder;
    let d = reader(tree, e)?.into_decoder().map_err(decode_error)?;
    let (w, h) = d.dimensions();
    Ok((w, h, !d.color_type().has_color()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeded shuffle is a permutation and depends on the seed.
    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        shuffle(&mut a, 1);
        shuffle(&mut b, 2);
        assert_ne!(a, b);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }
}
