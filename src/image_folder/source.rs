//! Where a set of pictures is read from: a folder on disk, a `.zip` of one, or files handed over
//! in memory (what the web page has when a folder is dropped on it). All three are read the same
//! way by [`super::load_source`]: [`Tree`] lists folders and files below the set's root and
//! opens a file's bytes, so the classes, the splits and the refusals do not depend on where the
//! pictures are.

use std::borrow::Cow;
use std::io::{BufRead, Cursor, Read, Seek};
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::path::PathBuf;

use zip::ZipArchive;

use crate::Error;

/// Most bytes one file of a set may hold (a zip entry declaring more is refused before it is
/// inflated: a zip bomb must not allocate what it declares).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Most bytes a `.zip` of pictures may hold (it is read into memory whole).
pub const MAX_ZIP_BYTES: u64 = 16 << 30;

/// A set of labelled pictures: `root/<class>/*.png`, or `root/{train,val,test}/<class>/*.png`.
pub enum Source {
    /// A folder on disk.
    #[cfg(not(target_arch = "wasm32"))]
    Dir(PathBuf),
    /// A zip archive of such a folder (its bytes) and its name. A zip whose entries all lie in
    /// one top folder (as zipping a folder makes them) is read from inside that folder.
    Zip {
        /// The archive's name, for messages and the set's name (`pets.zip`).
        name: String,
        /// The archive's bytes.
        bytes: Vec<u8>,
    },
    /// Files in memory by their path in the set, `/`-separated (`cats/1.png`, or
    /// `pets/cats/1.png` when the folder `pets` itself was chosen: one top folder common to
    /// every file is stepped into, as for a zip).
    Files {
        /// The set's name, for messages.
        name: String,
        /// (path, bytes) of each file.
        files: Vec<(String, Vec<u8>)>,
    },
}

impl Source {
    /// A folder, or a `.zip` file (by its first bytes), at `path`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &Path) -> Result<Source, Error> {
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        if !path.exists() {
            return Err(Error::Data(format!(
                "{}: no such folder (a folder of class folders of images, or a .zip of one, is expected: root/<class>/*.png)",
                path.display()
            )));
        }
        let bytes = crate::files::read_regular(path, MAX_ZIP_BYTES, "a zip of pictures")?;
        if !is_zip(&bytes) {
            return Err(Error::Data(format!(
                "{}: neither a folder nor a .zip (a folder of class folders of images, or a .zip of one, is expected: root/<class>/*.png)",
                path.display()
            )));
        }
        Ok(Source::Zip {
            name: path.display().to_string(),
            bytes,
        })
    }

    /// The set's name: the folder's, or the archive's without `.zip` (or the one folder
    /// inside it), as a model file's name may start with it: `pets`.
    pub fn set_name(&self) -> String {
        match Tree::new(self) {
            Ok(t) => t.set_name(),
            Err(_) => match self {
                #[cfg(not(target_arch = "wasm32"))]
                Source::Dir(p) => last_name(p),
                Source::Zip { name, .. } | Source::Files { name, .. } => {
                    last_name(std::path::Path::new(name))
                }
            },
        }
    }
}

/// A path's last component, without `.zip`.
fn last_name(root: &std::path::Path) -> String {
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned());
    name.unwrap_or_default()
        .trim_end_matches(".zip")
        .to_string()
}

/// Whether `bytes` start as a zip archive does.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Whether a name is skipped when listing: hidden files and folders (`.qnn-cache`,
/// `.DS_Store`) and macOS's resource folder in zips.
fn skipped(name: &str) -> bool {
    name.starts_with('.') || name == "__MACOSX"
}

/// Where a file's bytes are.
#[derive(Clone, Copy, Debug)]
pub(super) enum FileRef {
    /// On disk, at the entry's path.
    #[cfg(not(target_arch = "wasm32"))]
    Disk,
    /// A zip entry, by index.
    Zip(usize),
    /// One of [`Source::Files`], by index.
    Memory(usize),
}

/// A place in the set: its path for messages (and, on disk, for reading) and, in a listed set,
/// its components below the root.
#[derive(Clone, Debug)]
pub(super) struct Loc {
    pub path: PathBuf,
    parts: Vec<String>,
}

impl Loc {
    fn child(&self, name: &str) -> Loc {
        let mut parts = self.parts.clone();
        parts.push(name.to_string());
        Loc {
            path: self.path.join(name),
            parts,
        }
    }
}

/// A reader the image decoder can seek in.
pub(super) trait ReadSeek: BufRead + Seek {}
impl<T: BufRead + Seek> ReadSeek for T {}

/// The set, ready to be listed and read.
pub(super) enum Tree<'a> {
    #[cfg(not(target_arch = "wasm32"))]
    Disk(&'a Path),
    /// Every file's components below the root (the common top folder stepped into), and how
    /// to open it.
    Listed {
        root: PathBuf,
        items: Vec<(Vec<String>, FileRef)>,
        zip: Option<ZipArchive<Cursor<&'a [u8]>>>,
        files: &'a [(String, Vec<u8>)],
    },
}

impl<'a> Tree<'a> {
    /// Lists `source` (a zip's directory is read here; nothing is inflated).
    pub fn new(source: &'a Source) -> Result<Tree<'a>, Error> {
        let (root, mut items, zip, files) = match source {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Dir(p) => {
                if !p.is_dir() {
                    return Err(Error::Data(format!(
                        "{}: not a folder (a folder of class folders of images is expected: root/<class>/*.png)",
                        p.display()
                    )));
                }
                return Ok(Tree::Disk(p));
            }
            Source::Zip { name, bytes } => {
                let bad = |e: zip::result::ZipError| {
                    Error::Data(format!("{name}: not a readable zip archive ({e})"))
                };
                let mut z = ZipArchive::new(Cursor::new(bytes.as_slice())).map_err(bad)?;
                let mut items = Vec::new();
                for i in 0..z.len() {
                    let f = z.by_index_raw(i).map_err(bad)?;
                    if f.is_dir() || f.is_symlink() {
                        continue; // folders are implied by the paths; links are not followed
                    }
                    let path = f.name().map_err(bad)?;
                    items.push((split(&path), FileRef::Zip(i)));
                }
                (name.clone(), items, Some(z), &[][..])
            }
            Source::Files { name, files } => {
                let items = files
                    .iter()
                    .enumerate()
                    .map(|(i, (p, _))| (split(p), FileRef::Memory(i)))
                    .collect();
                (name.clone(), items, None, files.as_slice())
            }
        };
        items.retain(|(parts, _)| !parts.is_empty() && !parts.iter().any(|p| skipped(p)));
        let mut root = PathBuf::from(root);
        // a zipped (or chosen) folder: every file inside one top folder that is not a split
        while let Some(top) = items.first().map(|(p, _)| p[0].clone()) {
            let is_split = super::split_of(&top).is_some();
            if is_split || !items.iter().all(|(p, _)| p.len() > 2 && p[0] == top) {
                break;
            }
            root = root.join(&top);
            for (p, _) in &mut items {
                p.remove(0);
            }
        }
        Ok(Tree::Listed {
            root,
            items,
            zip,
            files,
        })
    }

    /// The set's root.
    pub fn root(&self) -> Loc {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Tree::Disk(p) => Loc {
                path: p.to_path_buf(),
                parts: Vec::new(),
            },
            Tree::Listed { root, .. } => Loc {
                path: root.clone(),
                parts: Vec::new(),
            },
        }
    }

    /// The set's name: its root's last component (a folder given as `.` or `..` by its real
    /// name), without `.zip`.
    pub fn set_name(&self) -> String {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Tree::Disk(p) => last_name(&p.canonicalize().unwrap_or_else(|_| p.to_path_buf())),
            Tree::Listed { root, .. } => last_name(root),
        }
    }

    /// The sub-folders of `at`, by name (hidden ones skipped); on disk a name that is not
    /// UTF-8 is refused.
    pub fn subfolders(&self, at: &Loc) -> Result<Vec<(String, Loc)>, Error> {
        let mut out = Vec::new();
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Tree::Disk(_) => {
                for (name, path, is_dir) in disk_entries(&at.path)? {
                    if !is_dir {
                        continue;
                    }
                    let Some(name) = name.to_str() else {
                        return Err(Error::Data(format!(
                            "{}: a folder name that is not UTF-8 cannot be a class name: rename it",
                            path.display()
                        )));
                    };
                    if !skipped(name) {
                        out.push((name.to_string(), at.child(name)));
                    }
                }
            }
            Tree::Listed { items, .. } => {
                let depth = at.parts.len();
                for (p, _) in items {
                    if p.len() > depth + 1 && p[..depth] == at.parts[..] {
                        out.push((p[depth].clone(), at.child(&p[depth])));
                    }
                }
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out.dedup_by(|a, b| a.0 == b.0);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The files directly in `at`, by name (sub-folders and hidden files ignored).
    pub fn files(&self, at: &Loc) -> Result<Vec<(PathBuf, FileRef)>, Error> {
        let mut out = Vec::new();
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Tree::Disk(_) => {
                for (name, path, is_dir) in disk_entries(&at.path)? {
                    if !is_dir && !skipped(&name.to_string_lossy()) {
                        out.push((path, FileRef::Disk));
                    }
                }
            }
            Tree::Listed { items, .. } => {
                let depth = at.parts.len();
                for (p, f) in items {
                    if p.len() == depth + 1 && p[..depth] == at.parts[..] {
                        out.push((at.path.join(&p[depth]), *f));
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A file's first bytes (up to 32), for its format.
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))] // the path is for disk files
    pub fn head(&self, path: &std::path::Path, file: FileRef) -> Result<Vec<u8>, String> {
        let mut head = vec![0u8; 32];
        let n = match (self, file) {
            #[cfg(not(target_arch = "wasm32"))]
            (_, FileRef::Disk) => {
                let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
                read_up_to(&mut f, &mut head)?
            }
            (Tree::Listed { zip: Some(z), .. }, FileRef::Zip(i)) => {
                let mut z = z.clone();
                let mut f = z.by_index(i).map_err(|e| e.to_string())?;
                read_up_to(&mut f, &mut head)?
            }
            (Tree::Listed { files, .. }, FileRef::Memory(i)) => {
                let b = &files[i].1;
                let n = b.len().min(32);
                head[..n].copy_from_slice(&b[..n]);
                n
            }
            _ => return Err("not in this set".into()),
        };
        head.truncate(n);
        Ok(head)
    }

    /// A reader of a file's bytes (a zip entry is inflated into memory, refused beyond
    /// [`MAX_FILE_BYTES`]).
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))]
    pub fn open(
        &self,
        path: &std::path::Path,
        file: FileRef,
    ) -> Result<Box<dyn ReadSeek + '_>, String> {
        match (self, file) {
            #[cfg(not(target_arch = "wasm32"))]
            (_, FileRef::Disk) => {
                let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
                Ok(Box::new(std::io::BufReader::new(f)))
            }
            (Tree::Listed { zip: Some(z), .. }, FileRef::Zip(i)) => {
                let mut z = z.clone();
                let f = z.by_index(i).map_err(|e| e.to_string())?;
                if f.size() > MAX_FILE_BYTES {
                    return Err(format!(
                        "declares {} bytes inflated, more than the {MAX_FILE_BYTES} a picture may take; qnn does not inflate it",
                        f.size()
                    ));
                }
                let mut bytes = Vec::with_capacity(f.size() as usize);
                f.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| e.to_string())?;
                if bytes.len() as u64 > MAX_FILE_BYTES {
                    return Err(format!(
                        "inflates to more than the {MAX_FILE_BYTES} bytes a picture may take"
                    ));
                }
                Ok(Box::new(Cursor::new(bytes)))
            }
            (Tree::Listed { files, .. }, FileRef::Memory(i)) => {
                Ok(Box::new(Cursor::new(Cow::Borrowed(files[i].1.as_slice()))))
            }
            _ => Err("not in this set".into()),
        }
    }

    /// What a file is, for the cache's key: its size and modification time on disk, its size
    /// and CRC-32 in a zip, its size in memory.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn fingerprint(&self, path: &std::path::Path, file: FileRef) -> String {
        match (self, file) {
            (_, FileRef::Disk) => {
                let m = std::fs::metadata(path).ok();
                let size = m.as_ref().map_or(0, |m| m.len());
                let time = m
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{size}|{time}")
            }
            (Tree::Listed { zip: Some(z), .. }, FileRef::Zip(i)) => {
                let mut z = z.clone();
                z.by_index_raw(i)
                    .map(|f| format!("{}|{:08x}", f.size(), f.crc32()))
                    .unwrap_or_default()
            }
            (Tree::Listed { files, .. }, FileRef::Memory(i)) => files[i].1.len().to_string(),
            _ => String::new(),
        }
    }
}

/// Reads until `buf` is full or the file ends; how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(n)
}

/// A path's components, `/`- or `\`-separated, without empty, `.` or `..` ones.
fn split(path: &str) -> Vec<String> {
    path.split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(str::to_string)
        .collect()
}

/// The entries of a folder on disk: (name, path, is a folder), in no particular order.
#[cfg(not(target_arch = "wasm32"))]
fn disk_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf, bool)>, Error> {
    let unreadable =
        |e: std::io::Error| Error::Data(format!("{}: cannot read the folder ({e})", dir.display()));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        let is_dir = path.is_dir();
        out.push((entry.file_name(), path, is_dir));
    }
    Ok(out)
}
