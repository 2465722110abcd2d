//! Writes folder sets of labelled PNG files — the layout `qnn train -ds folder` reads,
//! `OUT/<class>/<index>.png` or `OUT/{train,val,test}/<class>/<index>.png` — for the tests, the
//! README's examples and the load-time measurement:
//!
//! ```sh
//! cargo run --release --example image_sets -- mnist-mini OUT   # mnist-mini's train/val/test as PNG digits
//! cargo run --release --example image_sets -- rgb12 OUT 100    # 12 classes of 32×32 RGB pictures, 100 each
//! cargo run --release --example image_sets -- zip OUT OUT.zip    # a folder set as a .zip, the folder at its top
//! ```
//!
//! The digits keep their order in the file names, so the folder set trains exactly as the
//! embedded IDX files do (same seed, same batches, same test error).

use std::path::Path;

use image::{DynamicImage, GrayImage, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["mnist-mini", out] => mnist_mini(Path::new(out)),
        ["rgb12", out, per] => rgb12(Path::new(out), per.parse()?),
        ["zip", dir, out] => zip_folder(Path::new(dir), Path::new(out)),
        _ => Err(
            "usage: image_sets mnist-mini OUT | image_sets rgb12 OUT PER_CLASS | image_sets zip DIR OUT.zip"
                .into(),
        ),
    }
}

/// mnist-mini's training images (the last 1,000 as val/) and test images as PNG files.
fn mnist_mini(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = qnn::data::mnist_mini()?;
    let (train, val) = data.split(qnn::data::DatasetKind::MnistMini.default_valid())?;
    for (part, split) in [("train", &train), ("val", &val), ("test", &data.test)] {
        let digits = split.len().to_string().len();
        for (i, (px, &label)) in split
            .pixels
            .chunks_exact(784)
            .zip(&split.labels)
            .enumerate()
        {
            let img = GrayImage::from_raw(28, 28, px.to_vec()).expect("28×28");
            let path = out
                .join(part)
                .join(label.to_string())
                .join(format!("{i:0digits$}.png"));
            std::fs::create_dir_all(path.parent().expect("a folder"))?;
            DynamicImage::ImageLuma8(img).save(&path)?;
        }
    }
    println!("wrote mnist-mini as PNG files to {}", out.display());
    Ok(())
}

/// `per` 32×32 RGB pictures for each of 12 classes: each class a colour and a stripe direction,
/// each picture shifted and noisy, so the classes are learnable but not trivial.
fn rgb12(out: &Path, per: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for k in 0..12usize {
        let colour = [
            (k * 53) % 200 + 30,
            (k * 97 + 40) % 200 + 30,
            (k * 151 + 80) % 200 + 30,
        ];
        for i in 0..per {
            let (shift, noise_seed) = ((rand() % 8) as u32, rand());
            let img = RgbImage::from_fn(32, 32, |x, y| {
                let stripe = match k % 3 {
                    0 => (x + shift) / 4 % 2,
                    1 => (y + shift) / 4 % 2,
                    _ => (x + y + shift) / 4 % 2,
                } as i32;
                let n = ((noise_seed >> ((x * 3 + y) % 48)) & 31) as i32 - 16;
                image::Rgb(colour.map(|c| (c as i32 + 40 * stripe - 20 + n).clamp(0, 255) as u8))
            });
            let path = out.join(format!("class{k:02}")).join(format!("{i:05}.png"));
            std::fs::create_dir_all(path.parent().expect("a folder"))?;
            DynamicImage::ImageRgb8(img).save(&path)?;
        }
    }
    println!(
        "wrote {} pictures of 12 classes to {}",
        12 * per,
        out.display()
    );
    Ok(())
}

/// The folder `dir` as a zip at `out`, as zipping a folder makes one: every file under
/// `DIRNAME/`, deflated, in name order (hidden files, such as the cache, left out).
fn zip_folder(dir: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let base = dir.parent().unwrap_or(Path::new(""));
    let mut z = zip::ZipWriter::new(std::fs::File::create(out)?);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for f in &files {
        let name = f.strip_prefix(base)?.to_string_lossy().replace('\\', "/");
        z.start_file(name, opts)?;
        z.write_all(&std::fs::read(f)?)?;
    }
    z.finish()?;
    println!("wrote {} files to {}", files.len(), out.display());
    Ok(())
}
