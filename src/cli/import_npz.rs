//! `qnn import-npz`: a model saved by the seed's Lasagne code → a qnn .safetensors model.

use anyhow::{bail, Context, Result};
use qnn::checkpoint::{self, ModelMeta};

use super::args::ImportArgs;

pub fn import(args: ImportArgs) -> Result<()> {
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(net) = &args.net.net {
        anyhow::bail!(
            "--net {}: import-npz reads models saved by the seed's train_quantized.py, whose networks are the seed's blocks: give the network with -nla/-nfa/… (or by the file's name), not a net file",
            net.display()
        );
    }
    let (dataset, config) = if args.from_flags {
        let kind = super::dataset_kind(&args.net.dataset)?;
        (
            kind.name().to_string(),
            super::train_cmd::net_config(&args.net, kind.chw(), kind.classes())?,
        )
    } else {
        checkpoint::parse_seed_name(&stem)
            .map_err(|e| anyhow::anyhow!("{e} (with --from-flags and the network flags)"))?
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("safetensors"));
    let same = out == args.file
        || matches!((out.canonicalize(), args.file.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same {
        bail!(
            "--out {}: that is the input; writing there would destroy the .npz",
            out.display()
        );
    }
    if out.exists() && !args.overwrite {
        bail!(
            "{} already exists: pass --overwrite to replace it, or choose another --out",
            out.display()
        );
    }
    let arrays = read_npz(&args.file, &config)?;
    let tensors = checkpoint::from_lasagne(&config, &arrays)
        .with_context(|| format!("{}", args.file.display()))?;
    let non_finite = tensors
        .iter()
        .find(|t| t.values.iter().any(|v| !v.is_finite()));
    if let Some(t) = non_finite {
        bail!(
            "{}: '{}' holds NaN or infinite values; such a model cannot be used",
            args.file.display(),
            t.name
        );
    }
    // the seed's data sets (MNIST, CIFAR-10) name their ten classes
    let class_names = dataset
        .parse::<qnn::data::DatasetKind>()
        .map(|k| ModelMeta::saved_class_names(&k.class_names()))
        .unwrap_or_default();
    let meta = ModelMeta {
        dataset,
        config,
        epoch: 0,
        val_error: None,
        test_error: None,
        class_names,
    };
    checkpoint::save_model(&out, &tensors, &meta)?;
    println!(
        "{} → {} ({} tensors)",
        args.file.display(),
        out.display(),
        tensors.len()
    );
    Ok(())
}

/// arr_0, arr_1, … of an .npz, as f32. Their shapes are checked against `config`'s from the
/// arrays' headers before any data is read, so a small file declaring huge arrays allocates
/// nothing.
fn read_npz(
    path: &std::path::Path,
    config: &qnn::model::NetConfig,
) -> Result<Vec<(Vec<usize>, Vec<f32>)>> {
    let what = path.display().to_string();
    // npyz opens the path itself: refuse a device or a FIFO first
    qnn::files::open_regular(path)?;
    let mut npz = npyz::npz::NpzArchive::open(path)
        .with_context(|| format!("{what}: not a readable .npz (zip) file"))?;
    let count = npz.array_names().count();
    if count == 0 {
        bail!("{what}: the archive holds no arrays");
    }
    let mut shapes = Vec::new();
    for i in 0..count {
        let name = format!("arr_{i}");
        let arr = npz
            .by_name(&name)
            .with_context(|| format!("{what}: {name} is unreadable"))?
            .with_context(|| format!("{what}: no {name} (saved with np.savez(*params)?)"))?;
        let shape: Option<Vec<usize>> = arr
            .shape()
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        shapes.push(
            shape.with_context(|| format!("{what}: {name}: a dimension beyond this machine's"))?,
        );
    }
    checkpoint::check_lasagne_shapes(config, &shapes).with_context(|| what.clone())?;
    let mut out = Vec::new();
    for i in 0..count {
        let name = format!("arr_{i}");
        let arr = npz
            .by_name(&name)
            .with_context(|| format!("{what}: {name} is unreadable"))?
            .with_context(|| format!("{what}: no {name} (saved with np.savez(*params)?)"))?;
        let shape: Vec<usize> = arr.shape().iter().map(|&d| d as usize).collect();
        let data: Vec<f32> = match arr.dtype() {
            npyz::DType::Plain(t) if t.size_field() == 4 => arr
                .into_vec::<f32>()
                .with_context(|| format!("{what}: {name}"))?,
            npyz::DType::Plain(t) if t.size_field() == 8 => arr
                .into_vec::<f64>()
                .with_context(|| format!("{what}: {name}"))?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            other => bail!("{what}: {name} has dtype {other:?}, expected float32 or float64"),
        };
        out.push((shape, data));
    }
    Ok(out)
}
