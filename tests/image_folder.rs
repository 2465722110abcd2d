//! Your own images (`qnn::image_folder`): a folder of class folders of pictures becomes a data
//! set of one shape — every format qnn reads, splits by folders or by seeded fractions, sizes
//! and channels made uniform (and counted), a cache that round-trips — and every bad folder is
//! refused naming the file, or skipped and listed with `skip_bad`.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use qnn::image_folder::{load, FolderOptions, Resize};

/// A fresh empty folder under the temp dir.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qnn-imgf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn save(img: &DynamicImage, path: &Path, format: ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, format).unwrap();
}

/// Image `i` of class `k`: a w×h RGB picture whose colour says its class (so it is learnable)
/// and whose pixels vary with i.
fn picture(k: usize, i: usize, w: u32, h: u32) -> DynamicImage {
    let img = RgbImage::from_fn(w, h, |x, y| {
        let base = [(k * 53) % 256, (k * 97 + 40) % 256, (k * 151 + 80) % 256];
        let n = ((x as usize * 7 + y as usize * 13 + i * 31) % 32) as i32 - 16;
        image::Rgb(base.map(|b| (b as i32 + n).clamp(0, 255) as u8))
    });
    DynamicImage::ImageRgb8(img)
}

fn no_progress(_: usize, _: usize) {}

/// A 12-class set of 32×32 RGB pictures in every format qnn reads (PNG, JPEG, BMP, GIF, WebP),
/// 10 per class, no split folders: read as 3×32×32 with 12 class names in folder order; the
/// seeded split puts 1 of each class in test and 1 in validation, the same twice, another with
/// another seed.
#[test]
fn a_twelve_class_rgb_folder_in_every_format_reads() {
    let d = tmp("rgb12");
    let formats = [
        (ImageFormat::Png, "png"),
        (ImageFormat::Jpeg, "jpg"),
        (ImageFormat::Bmp, "bmp"),
        (ImageFormat::Gif, "gif"),
        (ImageFormat::WebP, "webp"),
    ];
    for k in 0..12 {
        for i in 0..10 {
            let (f, ext) = formats[(k + i) % formats.len()];
            save(
                &picture(k, i, 32, 32),
                &d.join(format!("class{k:02}/{i}.{ext}")),
                f,
            );
        }
    }
    let opts = FolderOptions::default();
    let (data, report) = load(&d, &opts, &no_progress).unwrap();
    assert_eq!(data.chw, [3, 32, 32]);
    assert_eq!(data.class_names.len(), 12);
    assert_eq!(data.class_names[0], "class00");
    assert_eq!((data.test.labels.len(), data.valid), (12, 12));
    assert_eq!(data.train.labels.len(), 12 * 9);
    assert_eq!(data.train.pixels.len(), 12 * 9 * 3 * 32 * 32);
    assert_eq!(
        (report.images, report.resized, report.not_images),
        (120, 0, 0)
    );
    for k in 0..12u16 {
        assert_eq!(data.test.labels.iter().filter(|&&l| l == k).count(), 1);
    }
    // a PNG's pixels arrive exactly, channel-major
    let png = picture(0, 0, 32, 32).to_rgb8();
    let (again, _) = load(&d, &opts, &no_progress).unwrap();
    assert_eq!(again, data, "the same folder and seed give the same data");
    let other = load(
        &d,
        &FolderOptions {
            seed: 99,
            ..opts.clone()
        },
        &no_progress,
    )
    .unwrap()
    .0;
    assert_eq!(other.test.labels.len(), 12);
    assert_ne!(
        other.test.pixels, data.test.pixels,
        "another seed, another split"
    );
    let all: Vec<&[u8]> = data
        .train
        .pixels
        .chunks_exact(3 * 32 * 32)
        .chain(data.test.pixels.chunks_exact(3 * 32 * 32))
        .collect();
    let want: Vec<u8> = (0..3)
        .flat_map(|ch| png.pixels().map(move |p| p[ch]))
        .collect();
    assert!(
        all.contains(&want.as_slice()),
        "class00/0.png's pixels are not found exactly"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `train/`, `val/` and `test/` folders are used as they are: validation last in train, labels
/// by the training classes' order, images within a split in file-name order across classes.
#[test]
fn split_folders_are_used_as_given() {
    let d = tmp("splits");
    for (part, n) in [("train", 4), ("val", 2), ("test", 3)] {
        for k in 0..2 {
            for i in 0..n {
                let name = format!("{part}/{}/{:03}.png", ["cat", "dog"][k], i * 2 + k);
                save(&picture(k, i, 8, 8), &d.join(name), ImageFormat::Png);
            }
        }
    }
    let (data, report) = load(&d, &FolderOptions::default(), &no_progress).unwrap();
    assert_eq!(data.class_names, ["cat", "dog"]);
    assert_eq!(
        (data.train.labels.len(), data.valid, data.test.labels.len()),
        (12, 4, 6)
    );
    // file-name order across classes: 000 (cat), 001 (dog), 002 (cat), …
    assert_eq!(&data.train.labels[..4], &[0, 1, 0, 1]);
    assert_eq!(report.split, "folders");
    let _ = std::fs::remove_dir_all(&d);
}

/// Mixed sizes and channels are made uniform and counted: the most common size wins (or
/// `input`), grey where every image is grey, RGB otherwise; crop keeps the centre.
#[test]
fn mixed_sizes_and_channels_are_handled_and_reported() {
    let d = tmp("mixed");
    for k in 0..2 {
        for i in 0..6 {
            let (w, h) = if i < 4 { (16, 16) } else { (40, 20) };
            let img = picture(k, i, w, h);
            let img = if i == 5 {
                DynamicImage::ImageLuma8(img.to_luma8())
            } else {
                img
            };
            save(&img, &d.join(format!("c{k}/{i}.png")), ImageFormat::Png);
        }
    }
    let (data, report) = load(&d, &FolderOptions::default(), &no_progress).unwrap();
    assert_eq!(data.chw, [3, 16, 16]);
    assert_eq!(report.resized, 4);
    assert_eq!(report.converted, 2, "the two grey pictures become RGB");
    let text = report.to_string();
    assert!(
        text.contains("4 resized") && text.contains("2 converted"),
        "{text}"
    );
    let opts = FolderOptions {
        input: Some([1, 8, 12]),
        resize: Resize::CenterCrop,
        ..FolderOptions::default()
    };
    let (small, report) = load(&d, &opts, &no_progress).unwrap();
    assert_eq!(small.chw, [1, 8, 12]);
    assert_eq!(small.train.pixels.len(), small.train.labels.len() * 96);
    assert_eq!(report.resized, 12);
    // all grey: one channel
    let g = tmp("grey");
    for k in 0..2 {
        for i in 0..5 {
            let img = DynamicImage::ImageLuma8(GrayImage::from_fn(9, 7, |x, y| {
                image::Luma([(x * 20 + y + k as u32 * 100 + i) as u8])
            }));
            save(&img, &g.join(format!("c{k}/{i}.png")), ImageFormat::Png);
        }
    }
    assert_eq!(
        load(&g, &FolderOptions::default(), &no_progress)
            .unwrap()
            .0
            .chw,
        [1, 7, 9]
    );
    for p in [d, g] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Each bad folder is refused naming the file or the class; a bad image is skipped and listed
/// with `skip_bad`; files that are not images are skipped and counted.
#[test]
fn bad_folders_are_refused_naming_what_is_wrong() {
    let fail =
        |root: &Path, opts: &FolderOptions| load(root, opts, &no_progress).unwrap_err().to_string();
    let opts = FolderOptions::default();
    let make = |name: &str, classes: usize, per: usize| {
        let d = tmp(name);
        for k in 0..classes {
            for i in 0..per {
                save(
                    &picture(k, i, 8, 8),
                    &d.join(format!("k{k}/{i}.png")),
                    ImageFormat::Png,
                );
            }
        }
        d
    };

    // a truncated PNG: named; skipped and listed with skip_bad
    let d = make("truncated", 2, 5);
    let bad = d.join("k1/3.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let e = fail(&d, &opts);
    assert!(
        e.contains("k1/3.png") && e.contains("--skip-bad-images"),
        "{e}"
    );
    let (data, report) = load(
        &d,
        &FolderOptions {
            skip_bad: true,
            ..opts.clone()
        },
        &no_progress,
    )
    .unwrap();
    assert_eq!(report.bad.len(), 1);
    assert!(report.bad[0].0.ends_with("k1/3.png"));
    assert_eq!(data.train.labels.len() + data.test.labels.len(), 9);

    // a file that is not an image: skipped and counted
    std::fs::write(d.join("k0/notes.txt"), "not a picture").unwrap();
    std::fs::write(&bad, &bytes).unwrap();
    let (_, report) = load(&d, &opts, &no_progress).unwrap();
    assert_eq!(report.not_images, 1);
    assert!(report.to_string().contains("notes.txt"), "{report}");

    // a class with no images, a single class, no classes
    std::fs::create_dir_all(d.join("k2")).unwrap();
    std::fs::write(d.join("k2/readme.md"), "empty").unwrap();
    let e = fail(&d, &opts);
    assert!(e.contains("class 'k2' has no images"), "{e}");
    let one = make("single", 1, 3);
    assert!(fail(&one, &opts).contains("a single class ('k0')"));
    let none = tmp("none");
    assert!(fail(&none, &opts).contains("no class folders"));
    let file = none.join("x.png");
    std::fs::write(&file, b"x").unwrap();
    assert!(fail(&file, &opts).contains("neither a folder nor a .zip"));

    // a decompression bomb: a PNG declaring 100000×100000 pixels is refused, not allocated
    let bomb_dir = make("bomb", 2, 3);
    std::fs::write(bomb_dir.join("k0/bomb.png"), bomb_png(100_000, 100_000)).unwrap();
    let e = fail(&bomb_dir, &opts);
    assert!(e.contains("bomb.png") && e.contains("16384"), "{e}");

    // a symlink loop where an image should be: named, not followed forever
    #[cfg(unix)]
    {
        let l = make("loop", 2, 3);
        std::os::unix::fs::symlink("loop.png", l.join("k1/loop.png")).unwrap();
        let e = fail(&l, &opts);
        assert!(e.contains("loop.png"), "{e}");
        let _ = std::fs::remove_dir_all(&l);
    }

    // a class folder whose name is not UTF-8
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let u = make("utf8", 2, 3);
        let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
        std::fs::create_dir_all(u.join(name)).unwrap();
        let e = fail(&u, &opts);
        assert!(e.contains("not UTF-8"), "{e}");
        let _ = std::fs::remove_dir_all(&u);
    }
    for p in [d, one, none, bomb_dir] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// A PNG whose header declares `w`×`h` 8-bit grey pixels, with one tiny data chunk: a decoder
/// that trusted the header would allocate w·h bytes.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend(data);
        out.extend(&c);
        out.extend(crc32(&c).to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The cache key changes when a file changes, and a cache made for the folder reads back to
/// the same data.
#[test]
fn the_cache_follows_the_files() {
    let d = tmp("cache");
    for k in 0..2 {
        for i in 0..5 {
            save(
                &picture(k, i, 8, 8),
                &d.join(format!("k{k}/{i}.png")),
                ImageFormat::Png,
            );
        }
    }
    let opts = FolderOptions::default();
    let key = qnn::image_folder::cache_key(&d, &opts).unwrap();
    let (data, _) = load(&d, &opts, &no_progress).unwrap();
    let bytes = data.to_cache_bytes(&key);
    assert_eq!(
        qnn::image_folder::FolderData::from_cache_bytes(bytes, &key),
        Some(data)
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    save(&picture(1, 9, 8, 8), &d.join("k1/2.png"), ImageFormat::Png);
    let changed = qnn::image_folder::cache_key(&d, &opts).unwrap();
    assert_ne!(key, changed);
    let other = qnn::image_folder::cache_key(&d, &FolderOptions { seed: 5, ..opts }).unwrap();
    assert_ne!(changed, other);
    let _ = std::fs::remove_dir_all(&d);
}

/// Writes `files` (path in the archive, bytes) as a zip at `path`, deflated.
fn write_zip(path: &Path, files: &[(String, Vec<u8>)]) {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        z.start_file(name.as_str(), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// Every file under `dir` as (path relative to `dir`'s parent, bytes): the folder `dir` itself
/// as a person zips it or drops it on the page.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir.parent().unwrap(), dir, &mut out);
    out.sort();
    out
}

/// The same pictures read three ways — the folder on disk, a `.zip` of it (with the folder at
/// its top, macOS's `__MACOSX/` and `.DS_Store` entries beside), and the files in memory as
/// the page hands them over — give the same data, bit for bit, and the same set name (also
/// for the folder given as `pets/kind0/..`).
#[test]
fn a_zip_and_files_in_memory_read_as_the_folder_does() {
    use qnn::image_folder::{load_source, Source};
    let base = tmp("zip-same");
    let d = base.join("pets");
    for k in 0..3 {
        for i in 0..6 {
            save(
                &picture(k, i, 10 + (i % 2) as u32, 10),
                &d.join(format!("kind{k}/{i}.png")),
                ImageFormat::Png,
            );
        }
    }
    std::fs::write(d.join("kind0/notes.txt"), "not a picture").unwrap();
    let opts = FolderOptions::default();
    let (on_disk, disk_report) = load(&d, &opts, &no_progress).unwrap();
    assert_eq!(disk_report.not_images, 1);
    assert_eq!(
        disk_report.resized, 9,
        "the 11-wide pictures are resized to 10×10"
    );

    let mut files = files_under(&d);
    let in_memory = Source::Files {
        name: String::new(),
        files: files.clone(),
    };
    assert_eq!(in_memory.set_name(), "pets");
    let (from_memory, report) = load_source(&in_memory, &opts, &no_progress).unwrap();
    assert_eq!(from_memory, on_disk);
    assert_eq!(
        (report.images, report.not_images, report.resized),
        (disk_report.images, 1, 9)
    );

    files.push((
        "__MACOSX/pets/kind0/._0.png".into(),
        b"resource fork".to_vec(),
    ));
    files.push(("pets/.DS_Store".into(), b"finder".to_vec()));
    let zip_path = base.join("pets.zip");
    write_zip(&zip_path, &files);
    let (from_zip, report) = load(&zip_path, &opts, &no_progress).unwrap();
    assert_eq!(from_zip, on_disk);
    assert_eq!(
        report.not_images, 1,
        "hidden and __MACOSX entries are not counted"
    );
    assert_eq!(Source::open(&zip_path).unwrap().set_name(), "pets");
    // a folder given by a path that does not end in its name is still named by it
    let roundabout = d.join("kind0").join("..");
    assert_eq!(Source::open(&roundabout).unwrap().set_name(), "pets");
    assert_eq!(
        load(&roundabout, &opts, &no_progress).unwrap().0.name,
        "pets"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// A zip holding `train/` and `test/` at its top is split by those folders; read through the
/// cache, the second read comes from `.qnn-cache/` beside the zip and equals the first.
#[test]
fn a_zip_with_split_folders_reads_and_caches_beside_itself() {
    let base = tmp("zip-split");
    let mut files = Vec::new();
    for (part, n) in [("train", 4), ("test", 2)] {
        for k in 0..2 {
            for i in 0..n {
                let mut png = Vec::new();
                picture(k, i, 6, 6)
                    .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
                    .unwrap();
                files.push((format!("{part}/c{k}/{i}.png"), png));
            }
        }
    }
    let zip_path = base.join("set.zip");
    write_zip(&zip_path, &files);
    let opts = FolderOptions::default();
    let (first, report, unwritten) =
        qnn::image_folder::load_cached(&zip_path, &opts, &no_progress).unwrap();
    assert!(report.is_some() && unwritten.is_none(), "{unwritten:?}");
    assert_eq!((first.train.labels.len(), first.test.labels.len()), (8, 4));
    assert_eq!(first.class_names, ["c0", "c1"]);
    let key = qnn::image_folder::cache_key(&zip_path, &opts).unwrap();
    let cache = qnn::image_folder::cache_path(&zip_path, &key);
    assert!(
        cache.starts_with(base.join(".qnn-cache")),
        "{}",
        cache.display()
    );
    assert!(cache.exists());
    let (second, report, _) =
        qnn::image_folder::load_cached(&zip_path, &opts, &no_progress).unwrap();
    assert!(report.is_none(), "the second read comes from the cache");
    assert_eq!(second, first);
    let _ = std::fs::remove_dir_all(&base);
}

/// Bad archives are refused naming the file: a truncated zip, a file that is neither a folder
/// nor a zip, a zip whose picture declares a decompression bomb's size (named inside the zip),
/// and an entry that inflates beyond what a picture may take.
#[test]
fn bad_zips_are_refused_naming_the_file() {
    let base = tmp("zip-bad");
    let opts = FolderOptions::default();
    let fail = |p: &Path| load(p, &opts, &no_progress).unwrap_err().to_string();

    let mut files = Vec::new();
    for k in 0..2 {
        for i in 0..10 {
            let mut png = Vec::new();
            picture(k, i, 4, 4)
                .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
                .unwrap();
            files.push((format!("c{k}/{i}.png"), png));
        }
    }
    let good = base.join("good.zip");
    write_zip(&good, &files);
    let bytes = std::fs::read(&good).unwrap();
    let cut = base.join("cut.zip");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = fail(&cut);
    assert!(
        e.contains("cut.zip") && e.contains("not a readable zip"),
        "{e}"
    );

    let text = base.join("list.txt");
    std::fs::write(&text, "c0/1.png\n").unwrap();
    let e = fail(&text);
    assert!(
        e.contains("list.txt") && e.contains("neither a folder nor a .zip"),
        "{e}"
    );

    let mut bombed = files.clone();
    bombed.push(("c1/bomb.png".into(), bomb_png(100_000, 100_000)));
    let bomb = base.join("bomb.zip");
    write_zip(&bomb, &bombed);
    let e = fail(&bomb);
    assert!(
        e.contains("bomb.png") && e.contains("decompression bomb"),
        "{e}"
    );
    let (data, report) = load(
        &bomb,
        &FolderOptions {
            skip_bad: true,
            ..opts.clone()
        },
        &no_progress,
    )
    .unwrap();
    assert_eq!((report.bad.len(), report.images), (1, 20));
    assert_eq!(data.class_names.len(), 2);

    // a PNG's signature, then zeros: they compress a thousandfold, a 300 MB entry is a 300 KB
    // file
    let mut zeros = vec![0u8; 300 << 20];
    zeros[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut big = files.clone();
    big.push(("c0/big.png".into(), zeros));
    let inflates = base.join("inflates.zip");
    write_zip(&inflates, &big);
    let e = fail(&inflates);
    assert!(e.contains("big.png") && e.contains("inflate"), "{e}");
    let _ = std::fs::remove_dir_all(&base);
}
