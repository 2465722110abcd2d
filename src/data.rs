//! Data sets: MNIST (IDX files, raw or .gz), CIFAR-10 (binary version: folder, or the .tar.gz),
//! and the embedded mnist-mini. Every malformed file is refused with a message naming it.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::backend::{DEFAULT_CLASSES, MAX_CLASSES, MIN_CLASSES};
use crate::Error;

/// CIFAR-10's class names, in label order (batches.meta.txt).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The names "0" … "n − 1": MNIST's digits, and the names of classes nobody named.
pub fn numbered_class_names(n: usize) -> Vec<String> {
    (0..n).map(|k| k.to_string()).collect()
}

/// Images and labels: `pixels` holds `labels.len()` images of c·h·w bytes, NCHW.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// The images, bytes 0..=255, one after another.
    pub pixels: Vec<u8>,
    /// One class per image, 0 to the data set's classes − 1.
    pub labels: Vec<u16>,
}

impl Split {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// No images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Images [from, to), each of `image_len` bytes.
    pub fn slice(&self, from: usize, to: usize, image_len: usize) -> Split {
        Split {
            pixels: self.pixels[from * image_len..to * image_len].to_vec(),
            labels: self.labels[from..to].to_vec(),
        }
    }
}

/// Which data set; parsed from a name such as `MNIST`, `cifar-10` or `mnist_mini`
/// (case, `-` and `_` ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// MNIST digits, 1×28×28, from IDX files (raw or .gz).
    Mnist,
    /// CIFAR-10, 3×32×32, from the binary version (folder or .tar.gz).
    Cifar10,
    /// The embedded mnist-mini subset of MNIST, 1×28×28.
    MnistMini,
    /// Your own pictures: a folder of class folders (`qnn::image_folder`); its shape, classes
    /// and validation split come from the folder, not from the kind.
    Folder,
}

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let k: String = s
            .to_ascii_lowercase()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect();
        match k.as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "cifar10" => Ok(DatasetKind::Cifar10),
            "mnistmini" => Ok(DatasetKind::MnistMini),
            "folder" => Ok(DatasetKind::Folder),
            _ => Err(format!(
                "unknown data set '{s}': use MNIST, CIFAR-10, mnist-mini or folder (your own pictures, --data-dir DIR)"
            )),
        }
    }
}

impl DatasetKind {
    /// The name used in model file names (the seed's spelling).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::Cifar10 => "CIFAR-10",
            DatasetKind::MnistMini => "mnist-mini",
            DatasetKind::Folder => "folder",
        }
    }
    /// Image shape (channels, height, width); a folder's is its pictures' (this gives MNIST's,
    /// the page's and the window's default).
    pub fn chw(self) -> (usize, usize, usize) {
        match self {
            DatasetKind::Cifar10 => (3, 32, 32),
            _ => (1, 28, 28),
        }
    }
    /// Classes its labels name: ten for each of these.
    pub fn classes(self) -> usize {
        DEFAULT_CLASSES
    }
    /// The classes' names, in label order: the digits "0" … "9", CIFAR-10's ten names.
    pub fn class_names(self) -> Vec<String> {
        match self {
            DatasetKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
            _ => numbered_class_names(DEFAULT_CLASSES),
        }
    }
    /// Validation images taken from the end of the training file (docs/spec.md).
    pub fn default_valid(self) -> usize {
        match self {
            DatasetKind::Mnist => 10_000,
            DatasetKind::Cifar10 => 5_000,
            DatasetKind::MnistMini => 1_000,
            // the folder's own: its val/ folder or its validation fraction
            DatasetKind::Folder => 0,
        }
    }
}

/// A data set as its files hold it: the whole training file and the test file.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Which data set.
    pub kind: DatasetKind,
    /// Image shape (channels, height, width).
    pub chw: (usize, usize, usize),
    /// The classes' names, in label order; their count is the data set's class count
    /// ([`Dataset::classes`]).
    pub class_names: Vec<String>,
    /// The whole training file (validation is split off by [`Dataset::split`]).
    pub train: Split,
    /// The test file.
    pub test: Split,
}

impl Dataset {
    /// Bytes per image, c·h·w.
    pub fn image_len(&self) -> usize {
        self.chw.0 * self.chw.1 * self.chw.2
    }

    /// Classes the labels name: the number of [`Dataset::class_names`].
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Refuses a data set that cannot be trained on as it stands: a class count outside
    /// [`MIN_CLASSES`]..=[`MAX_CLASSES`], a label of no class (named by split and image), or
    /// pixels that are not whole images.
    pub fn validate(&self) -> Result<(), Error> {
        let classes = self.classes();
        if !(MIN_CLASSES..=MAX_CLASSES).contains(&classes) {
            return Err(Error::Data(format!(
                "{} has {classes} classes: a data set needs {MIN_CLASSES} to {MAX_CLASSES}",
                self.kind.name()
            )));
        }
        let len = self.image_len();
        for (part, split) in [("training", &self.train), ("test", &self.test)] {
            if let Some((i, l)) = split
                .labels
                .iter()
                .enumerate()
                .find(|(_, &l)| l as usize >= classes)
            {
                return Err(Error::Data(format!(
                    "{}: {part} image {i} has label {l}, but there are {classes} classes (labels 0–{})",
                    self.kind.name(),
                    classes - 1
                )));
            }
            if split.pixels.len() != split.labels.len() * len {
                return Err(Error::Data(format!(
                    "{}: the {part} images hold {} bytes, {} images of {len} bytes need {}",
                    self.kind.name(),
                    split.pixels.len(),
                    split.labels.len(),
                    split.labels.len() * len
                )));
            }
        }
        Ok(())
    }

    /// (train, valid): the last `valid` images of the training file validate.
    pub fn split(&self, valid: usize) -> Result<(Split, Split), Error> {
        let n = self.train.len();
        if n == 0 {
            return Err(Error::Data("the training file holds no images".to_string()));
        }
        if valid >= n {
            return Err(Error::Data(format!(
                "a validation split of {valid} leaves no training data (the training file holds {n} images): take fewer than {n} for validation"
            )));
        }
        let len = self.image_len();
        Ok((
            self.train.slice(0, n - valid, len),
            self.train.slice(n - valid, n, len),
        ))
    }
}

/// Loads a data set; `dir` is ignored for the embedded mnist-mini.
pub fn load(kind: DatasetKind, dir: &Path) -> Result<Dataset, Error> {
    match kind {
        DatasetKind::MnistMini => mnist_mini(),
        DatasetKind::Mnist => {
            if !dir.is_dir() {
                return Err(missing_dir(dir, "MNIST", "mnist"));
            }
            let mut files = Vec::new();
            for name in MNIST_FILES {
                files.push(read_maybe_gz(dir, name)?);
            }
            from_files(kind, &files)
        }
        DatasetKind::Cifar10 => load_cifar(dir),
        DatasetKind::Folder => Err(Error::Data(format!(
            "{}: a folder of pictures is read with its options (qnn::image_folder), not by data::load",
            dir.display()
        ))),
    }
}

/// A data set from a folder of pictures ([`crate::image_folder`]), and how many of its training
/// images validate.
pub fn from_folder(f: crate::image_folder::FolderData) -> (Dataset, usize) {
    let [c, h, w] = f.chw;
    (
        Dataset {
            kind: DatasetKind::Folder,
            chw: (c, h, w),
            class_names: f.class_names,
            train: Split {
                pixels: f.train.pixels,
                labels: f.train.labels,
            },
            test: Split {
                pixels: f.test.pixels,
                labels: f.test.labels,
            },
        },
        f.valid,
    )
}

/// MNIST's four files as distributed (each may also be gzipped, as `name.gz`).
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// A data set from its files' bytes, as a person hands them over (a file picker, a drop, or
/// read from a folder): (file name or path, bytes). MNIST: the four IDX files, raw or gzipped
/// (matched by name, with or without `.gz`). CIFAR-10: the six binary batches, or the official
/// `.tar.gz` holding them. Messages name the files as given.
pub fn from_files(kind: DatasetKind, files: &[(String, Vec<u8>)]) -> Result<Dataset, Error> {
    match kind {
        DatasetKind::MnistMini => mnist_mini(),
        DatasetKind::Folder => Err(Error::Data(
            "a folder of pictures (or a .zip of one) is read by qnn::image_folder with its options (the page: WebPictures), not as data files".into(),
        )),
        DatasetKind::Mnist => {
            let find = |name: &str| -> Result<(String, Vec<u8>), Error> {
                let (path, bytes) = files
                    .iter()
                    .find(|(p, _)| {
                        let b = base_name(p);
                        b == name || b.strip_suffix(".gz") == Some(name)
                    })
                    .ok_or_else(|| {
                        Error::Data(format!(
                            "MNIST needs {name} (or {name}.gz); it is not among the files given"
                        ))
                    })?;
                let data = if is_gzip(bytes) || path.ends_with(".gz") {
                    gunzip(bytes, path)?
                } else {
                    bytes.clone()
                };
                Ok((path.clone(), data))
            };
            let pair = |images: &str, labels: &str| -> Result<Split, Error> {
                let (ip, ib) = find(images)?;
                let (lp, lb) = find(labels)?;
                mnist_pair(&ip, &ib, &lp, &lb)
            };
            Ok(Dataset {
                kind,
                chw: (1, 28, 28),
                class_names: kind.class_names(),
                train: pair(MNIST_FILES[0], MNIST_FILES[1])?,
                test: pair(MNIST_FILES[2], MNIST_FILES[3])?,
            })
        }
        DatasetKind::Cifar10 => {
            // archives unpacked in memory, their entries named "archive:entry"
            let mut all: Vec<(String, Vec<u8>)> = Vec::new();
            for (path, bytes) in files {
                if is_gzip(bytes) || path.ends_with(".gz") {
                    for (entry, data) in untar_gz(bytes, path)? {
                        all.push((format!("{path}:{entry}"), data));
                    }
                } else {
                    all.push((path.clone(), bytes.clone()));
                }
            }
            let find = |name: &str| {
                all.iter()
                    .find(|(p, _)| base_name(p) == name)
                    .ok_or_else(|| {
                        Error::Data(format!(
                            "CIFAR-10 needs {name} (the binary version, or {CIFAR_ARCHIVE}); it is not among the files given"
                        ))
                    })
            };
            let mut train = Split::default();
            for name in CIFAR_TRAIN {
                let (p, b) = find(name)?;
                let s = parse_cifar(b, p)?;
                train.pixels.extend(s.pixels);
                train.labels.extend(s.labels);
            }
            let (p, b) = find(CIFAR_TEST)?;
            let test = parse_cifar(b, p)?;
            Ok(Dataset {
                kind,
                chw: (3, 32, 32),
                class_names: kind.class_names(),
                train,
                test,
            })
        }
    }
}

fn missing_dir(dir: &Path, what: &str, dl: &str) -> Error {
    if dir.exists() {
        return Error::Data(format!(
            "--data-dir '{}' is a file, not a folder: give the folder that holds the {what} files",
            dir.display()
        ));
    }
    Error::Data(format!(
        "data folder '{}' does not exist: put the {what} files there (`qnn download {dl}` fetches them)",
        dir.display()
    ))
}

/// The embedded mnist-mini: 9,000 training and 1,000 test digits (see scripts/make_mnist_mini.py).
pub fn mnist_mini() -> Result<Dataset, Error> {
    const TRAIN_X: &[u8] = include_bytes!("../assets/mnist-mini/train-images-idx3-ubyte.gz");
    const TRAIN_Y: &[u8] = include_bytes!("../assets/mnist-mini/train-labels-idx1-ubyte.gz");
    const TEST_X: &[u8] = include_bytes!("../assets/mnist-mini/t10k-images-idx3-ubyte.gz");
    const TEST_Y: &[u8] = include_bytes!("../assets/mnist-mini/t10k-labels-idx1-ubyte.gz");
    let pair = |x: &[u8], y: &[u8], part: &str| -> Result<Split, Error> {
        let (iname, lname) = (
            format!("mnist-mini {part} images"),
            format!("mnist-mini {part} labels"),
        );
        mnist_pair(&iname, &gunzip(x, &iname)?, &lname, &gunzip(y, &lname)?)
    };
    let train = pair(TRAIN_X, TRAIN_Y, "train")?;
    let test = pair(TEST_X, TEST_Y, "test")?;
    Ok(Dataset {
        kind: DatasetKind::MnistMini,
        chw: (1, 28, 28),
        class_names: DatasetKind::MnistMini.class_names(),
        train,
        test,
    })
}

/// Inflates a gzipped IDX file (one gzip member or several, as `gunzip` accepts), reading no
/// more than its IDX header declares (plus one byte, so that a longer stream is reported by the
/// parser as a size mismatch): a small file that inflates to gigabytes is never inflated whole.
fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>, Error> {
    let bad = |e: std::io::Error| Error::Data(format!("{name}: not a valid gzip file ({e})"));
    let mut d = flate2::read::MultiGzDecoder::new(bytes);
    // magic: 0, 0, type, number of dimensions; then one big-endian u32 per dimension
    let mut out = Vec::new();
    (&mut d).take(4).read_to_end(&mut out).map_err(bad)?;
    let dims = if out.len() == 4 && out[3] <= 4 {
        out[3] as usize
    } else {
        0
    };
    (&mut d)
        .take(4 * dims as u64)
        .read_to_end(&mut out)
        .map_err(bad)?;
    let header = 4 + 4 * dims;
    let mut payload: u64 = if out.len() == header { 1 } else { 0 };
    for k in 0..dims.min((out.len().saturating_sub(4)) / 4) {
        let v = u32::from_be_bytes(out[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes"));
        payload = payload.saturating_mul(v as u64);
    }
    d.take(payload.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(bad)?;
    Ok(out)
}

/// The largest MNIST IDX file, raw or gzipped (the training images: 47,040,016 bytes raw).
const IDX_MAX_BYTES: u64 = 64 << 20;

/// Reads `dir/name`, or else `dir/name.gz` (as it is: `from_files` inflates it).
fn read_maybe_gz(dir: &Path, name: &str) -> Result<(String, Vec<u8>), Error> {
    for p in [dir.join(name), dir.join(format!("{name}.gz"))] {
        // exists, not is_file: a link to a device is refused by name, not called missing
        if p.exists() {
            let b = crate::files::read_regular(&p, IDX_MAX_BYTES, "an MNIST IDX file")?;
            return Ok((p.display().to_string(), b));
        }
    }
    Err(Error::Data(format!(
        "{}: missing (neither {name} nor {name}.gz is there)",
        dir.display()
    )))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX image file (magic 0x00000803): (count, rows, cols, pixels).
pub fn parse_idx_images(bytes: &[u8], what: &str) -> Result<(usize, usize, usize, Vec<u8>), Error> {
    // the magic first: a file of another kind is named as such, not as a short one
    if bytes.len() >= 4 && be32(bytes, 0) != 0x803 {
        return Err(Error::Data(format!(
            "{what}: not an IDX image file (magic {:#010x}, expected 0x00000803)",
            be32(bytes, 0)
        )));
    }
    if bytes.len() < 16 {
        return Err(Error::Data(format!(
            "{what}: truncated IDX image file ({} bytes, the header alone is 16)",
            bytes.len()
        )));
    }
    let (n, r, c) = (
        be32(bytes, 4) as usize,
        be32(bytes, 8) as usize,
        be32(bytes, 12) as usize,
    );
    let need = n
        .checked_mul(r * c)
        .ok_or_else(|| Error::Data(format!("{what}: impossible header")))?;
    if bytes.len() - 16 != need {
        return Err(Error::Data(format!(
            "{what}: the header says {n} images of {r}×{c} ({need} bytes) but the file holds {} bytes of pixels{}",
            bytes.len() - 16,
            if bytes.len() - 16 < need {
                " (truncated?)".to_string()
            } else {
                format!(" ({} bytes after them)", bytes.len() - 16 - need)
            }
        )));
    }
    Ok((n, r, c, bytes[16..].to_vec()))
}

/// Parses an IDX label file (magic 0x00000801); every label must be a digit 0–9.
pub fn parse_idx_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    if bytes.len() >= 4 && be32(bytes, 0) != 0x801 {
        return Err(Error::Data(format!(
            "{what}: not an IDX label file (magic {:#010x}, expected 0x00000801)",
            be32(bytes, 0)
        )));
    }
    if bytes.len() < 8 {
        return Err(Error::Data(format!(
            "{what}: truncated IDX label file ({} bytes, the header alone is 8)",
            bytes.len()
        )));
    }
    let n = be32(bytes, 4) as usize;
    let held = bytes.len() - 8;
    if held != n {
        let how = if held > n {
            format!("{} bytes after them", held - n)
        } else {
            "truncated?".to_string()
        };
        return Err(Error::Data(format!(
            "{what}: the header says {n} labels but the file holds {held} ({how})"
        )));
    }
    let labels = bytes[8..].to_vec();
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l >= 10) {
        return Err(Error::Data(format!(
            "{what}: label {i} is {l}, labels must be 0–9"
        )));
    }
    Ok(labels)
}

fn mnist_pair(iname: &str, images: &[u8], lname: &str, labels: &[u8]) -> Result<Split, Error> {
    let (n, r, c, pixels) = parse_idx_images(images, iname)?;
    if (r, c) != (28, 28) {
        return Err(Error::Data(format!(
            "{iname}: images are {r}×{c}, MNIST's are 28×28"
        )));
    }
    let labels = parse_idx_labels(labels, lname)?;
    if labels.len() != n {
        return Err(Error::Data(format!(
            "{iname} holds {n} images but {lname} holds {} labels",
            labels.len()
        )));
    }
    Ok(Split {
        pixels,
        labels: labels.into_iter().map(u16::from).collect(),
    })
}

/// Size of one CIFAR-10 record: a label byte and 3·32·32 pixels.
pub const CIFAR_RECORD: usize = 3073;

/// Parses CIFAR-10 binary records (any count).
pub fn parse_cifar(bytes: &[u8], what: &str) -> Result<Split, Error> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR_RECORD) {
        return Err(Error::Data(format!(
            "{what}: {} bytes is not a whole number of CIFAR-10 records ({CIFAR_RECORD} bytes each){}",
            bytes.len(),
            if bytes.is_empty() { "" } else { " — truncated or not the binary version?" }
        )));
    }
    let n = bytes.len() / CIFAR_RECORD;
    let mut split = Split {
        pixels: Vec::with_capacity(n * 3072),
        labels: Vec::with_capacity(n),
    };
    for (i, rec) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
        if rec[0] >= 10 {
            return Err(Error::Data(format!(
                "{what}: record {i} has label {}, labels must be 0–9",
                rec[0]
            )));
        }
        split.labels.push(rec[0].into());
        split.pixels.extend_from_slice(&rec[1..]);
    }
    Ok(split)
}

const CIFAR_TRAIN: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const CIFAR_TEST: &str = "test_batch.bin";
/// The file name of the official CIFAR-10 binary archive.
pub const CIFAR_ARCHIVE: &str = "cifar-10-binary.tar.gz";

fn load_cifar(dir: &Path) -> Result<Dataset, Error> {
    if !dir.is_dir() {
        return Err(missing_dir(dir, "CIFAR-10", "cifar-10"));
    }
    // a batch is 30,730,000 bytes, the official archive about 170 MB
    let read = |p: PathBuf| -> Result<(String, Vec<u8>), Error> {
        let b = crate::files::read_regular(&p, MAX_ARCHIVE_ENTRY, "a CIFAR-10 file")?;
        Ok((p.display().to_string(), b))
    };
    let files: Vec<(String, Vec<u8>)> = if let Some(folder) =
        [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
            .into_iter()
            .find(|d| d.join(CIFAR_TEST).is_file())
    {
        CIFAR_TRAIN
            .iter()
            .chain([&CIFAR_TEST])
            .map(|name| read(folder.join(name)))
            .collect::<Result<_, _>>()?
    } else if dir.join(CIFAR_ARCHIVE).is_file() {
        vec![read(dir.join(CIFAR_ARCHIVE))?]
    } else {
        return Err(Error::Data(format!(
            "{}: no CIFAR-10 binary files (data_batch_1..5.bin and test_batch.bin, here or in cifar-10-batches-bin/) and no {CIFAR_ARCHIVE} (`qnn download cifar-10` fetches it)",
            dir.display()
        )));
    };
    from_files(DatasetKind::Cifar10, &files)
}

/// The largest data file read, or held in an archive (CIFAR-10's batches are 30,730,000 bytes,
/// its archive about 170 MB).
pub const MAX_ARCHIVE_ENTRY: u64 = 256 << 20;

/// (path, contents) of every regular file in a .tar.gz.
pub fn untar_gz(bytes: &[u8], what: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let bad = |e: std::io::Error| Error::Data(format!("{what}: not a readable .tar.gz ({e})"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.display().to_string();
        let size = entry.header().size().map_err(bad)?;
        if size > MAX_ARCHIVE_ENTRY {
            return Err(Error::Data(format!(
                "{what}: the entry '{name}' declares {size} bytes, more than any data set file here ({MAX_ARCHIVE_ENTRY})"
            )));
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        out.push((name, data));
    }
    Ok(out)
}

/// Hex MD5 of `bytes` (the checksums the data sets publish).
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a downloaded file against its published MD5 and stores it in `dir` atomically; a
/// `.tar.gz` is also unpacked there (its files keep their folders).
pub fn install_download(bytes: &[u8], name: &str, md5: &str, dir: &Path) -> Result<(), Error> {
    let got = md5_hex(bytes);
    if got != md5 {
        return Err(Error::Data(format!("{name}: checksum mismatch (MD5 {got}, expected {md5}): the download is corrupt or not the official file")));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if name.ends_with(".tar.gz") {
        for (path, data) in untar_gz(bytes, name)? {
            let rel = Path::new(&path);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(Error::Data(format!(
                    "{name}: refusing the archive entry '{path}' outside the data folder"
                )));
            }
            crate::files::write_atomic(&dir.join(rel), &data)?;
        }
    }
    crate::files::write_atomic(&dir.join(name), bytes)
}
