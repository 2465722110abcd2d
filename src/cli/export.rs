//! `qnn export`: a saved model → an ONNX or QONNX file ([`qnn::export`]), written atomically.

use anyhow::{bail, Result};
use qnn::checkpoint;

use super::args::ExportArgs;

pub fn export(args: ExportArgs) -> Result<()> {
    let format = args.format;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        args.model
            .with_file_name(format!("{stem}.{}", format.extension()))
    });
    let same = out == args.model
        || matches!((out.canonicalize(), args.model.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same {
        bail!(
            "--out {}: that is the model itself; writing there would destroy it",
            out.display()
        );
    }
    if out.exists() && !args.overwrite {
        bail!(
            "{} already exists: pass --overwrite to replace it, or choose another --out",
            out.display()
        );
    }
    let (tensors, meta) = checkpoint::load_model(&args.model)?;
    let bytes = qnn::export::export(&tensors, &meta, format)?;
    qnn::files::write_atomic(&out, &bytes)?;
    let model_len = std::fs::metadata(&args.model).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} → {} ({}, {} bytes; the model file has {model_len})",
        args.model.display(),
        out.display(),
        format.name(),
        bytes.len()
    );
    Ok(())
}
