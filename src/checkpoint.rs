//! Saved models (safetensors, with the whole configuration in the metadata) and training state
//! for --resume. Every file is written atomically ([`crate::files::write_atomic`]).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype as StDtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::model::{NetConfig, Tensor};
use crate::Error;

/// What a model file says about itself (safetensors metadata, as strings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Name of the data set it was trained on.
    pub dataset: String,
    /// The network.
    pub config: NetConfig,
    /// The epoch it was saved after (0 for an imported model).
    pub epoch: usize,
    /// Validation error (%) of the saved epoch; `None` where unknown (an imported model).
    pub val_error: Option<f64>,
    /// Test error (%) of the saved epoch; `None` where unknown (an imported model).
    pub test_error: Option<f64>,
    /// The classes' names in label order, one per class the network scores; empty where they
    /// are the numbers "0", "1", … (MNIST's digits: [`ModelMeta::saved_class_names`]), so
    /// that such files are written as before there were names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
}

impl ModelMeta {
    /// What a model file keeps of a data set's class names: nothing when they are the numbers
    /// "0" … "n − 1" (they go without saying), else the names.
    pub fn saved_class_names(names: &[String]) -> Vec<String> {
        if names.iter().enumerate().all(|(k, n)| *n == k.to_string()) {
            Vec::new()
        } else {
            names.to_vec()
        }
    }

    /// The classes' names: the file's, else the numbers "0" … "classes − 1".
    pub fn class_names_or_numbers(&self) -> Vec<String> {
        if self.class_names.is_empty() {
            crate::data::numbered_class_names(self.config.classes)
        } else {
            self.class_names.clone()
        }
    }
}

/// An error rate for people: "1.23%", or "unknown".
pub fn percent(e: Option<f64>) -> String {
    e.map_or("unknown".into(), |e| format!("{e:.2}%"))
}

/// A safetensors file's bytes holding `tensors` (as f32) and `metadata`.
pub fn to_bytes(tensors: &[Tensor], metadata: HashMap<String, String>) -> Result<Vec<u8>, Error> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| bytemuck::cast_slice(&t.values).to_vec())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            Ok((
                t.name.clone(),
                TensorView::new(StDtype::F32, t.shape.clone(), b)
                    .map_err(|e| Error::Model(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Model(e.to_string()))
}

/// Parses a safetensors file of f32 tensors, sorted by name, and its metadata.
pub fn from_bytes(
    bytes: &[u8],
    what: &str,
) -> Result<(Vec<Tensor>, HashMap<String, String>), Error> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::Model(format!("{what}: not a readable safetensors file ({e})"))
    };
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(Error::Model(format!(
            "{what}: a zip archive (.npz), not a safetensors model; a model saved by the seed converts with `qnn import-npz`"
        )));
    }
    // the first 8 bytes give the JSON header's length; a file of another kind gives nonsense
    if bytes.len() < 8 {
        return Err(Error::Model(format!(
            "{what}: not a safetensors file ({} bytes; truncated?)",
            bytes.len()
        )));
    }
    let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if header > bytes.len() as u64 - 8 {
        return Err(Error::Model(format!(
            "{what}: not a safetensors file, or truncated (its header claims {header} bytes; the file has {})",
            bytes.len()
        )));
    }
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != StDtype::F32 {
            return Err(Error::Model(format!(
                "{what}: tensor '{name}' is {:?}, expected F32",
                view.dtype()
            )));
        }
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
        let non_finite = values.iter().filter(|v| !v.is_finite()).count();
        if non_finite > 0 {
            return Err(Error::NonFinite(format!(
                "{what}: tensor '{name}' holds {non_finite} NaN or infinite values of {}; a model that diverged cannot be used",
                values.len()
            )));
        }
        out.push(Tensor::new(name, view.shape().to_vec(), values));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// A model file's bytes: the tensors and the configuration in the metadata.
pub fn model_to_bytes(tensors: &[Tensor], meta: &ModelMeta) -> Result<Vec<u8>, Error> {
    let mut m = HashMap::new();
    m.insert("format".into(), "qnn-model-v1".into());
    m.insert(
        "qnn".into(),
        serde_json::to_string(meta).expect("serializable"),
    );
    // the same facts as flat strings, for readers that only show metadata
    m.insert("dataset".into(), meta.dataset.clone());
    m.insert("input_shape".into(), format!("{:?}", meta.config.input));
    m.insert("blocks".into(), format!("{:?}", meta.config.blocks));
    m.insert("bits".into(), meta.config.bits.to_string());
    m.insert("quantized".into(), meta.config.quantized.to_string());
    m.insert(
        "nonlinearity".into(),
        meta.config.nonlinearity.name().into(),
    );
    m.insert("sym".into(), meta.config.sym.to_string());
    if meta.config.classes != crate::backend::DEFAULT_CLASSES {
        m.insert("classes".into(), meta.config.classes.to_string());
    }
    m.insert("epoch".into(), meta.epoch.to_string());
    m.insert("val_error".into(), percent(meta.val_error));
    m.insert("test_error".into(), percent(meta.test_error));
    to_bytes(tensors, m)
}

/// Parses a model file's bytes; `what` names it in messages. Refuses files that are not qnn
/// models, describe an invalid network, or hold non-finite values.
pub fn model_from_bytes(bytes: &[u8], what: &str) -> Result<(Vec<Tensor>, ModelMeta), Error> {
    let (tensors, meta) = from_bytes(bytes, what)?;
    let json = meta
        .get("qnn")
        .ok_or_else(|| {
            if meta.contains_key("state") && meta.contains_key("run") {
                Error::Model(format!("{what}: a qnn training state (what --resume continues from), not a model: the run's model is the .safetensors file of the same name without .state"))
            } else {
                Error::Model(format!("{what}: a safetensors file, but not a qnn model (no 'qnn' metadata); a model saved by the seed (.npz) converts with `qnn import-npz`"))
            }
        })?;
    let meta: ModelMeta = serde_json::from_str(json)
        .map_err(|e| Error::Model(format!("{what}: unreadable qnn metadata ({e})")))?;
    meta.config.validate().map_err(|e| {
        Error::Model(format!(
            "{what}: the network it describes is not valid ({e})"
        ))
    })?;
    if !meta.class_names.is_empty() && meta.class_names.len() != meta.config.classes {
        return Err(Error::Model(format!(
            "{what}: it names {} classes, but its network scores {}",
            meta.class_names.len(),
            meta.config.classes
        )));
    }
    check_tensors(&tensors, &meta, what)?;
    Ok((tensors, meta))
}

/// Refuses a model whose tensors are not exactly those of the network its metadata describes
/// ([`NetConfig::tensor_shapes`]): each missing, unexpected or mis-shaped tensor is named (the
/// first few of each).
fn check_tensors(tensors: &[Tensor], meta: &ModelMeta, what: &str) -> Result<(), Error> {
    let want = meta.config.tensor_shapes();
    let mut problems = Vec::new();
    for (name, shape) in &want {
        match tensors.iter().find(|t| &t.name == name) {
            None => problems.push(format!("no {name} {shape:?}")),
            Some(t) if &t.shape != shape => problems.push(format!(
                "{name} is {:?} where the network has {shape:?}",
                t.shape
            )),
            Some(_) => {}
        }
    }
    for t in tensors {
        if !want.iter().any(|(name, _)| name == &t.name) {
            problems.push(format!("{} {:?} is not in the network", t.name, t.shape));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(4);
    let more = problems.len() - shown;
    Err(Error::Model(format!(
        "{what}: its tensors are not those of the network its metadata describes ({}): {}{}",
        meta.config.model_name(&meta.dataset),
        problems[..shown].join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )))
}

/// Writes a model file (see [`model_to_bytes`]) to `path`, atomically.
pub fn save_model(path: &Path, tensors: &[Tensor], meta: &ModelMeta) -> Result<(), Error> {
    crate::files::write_atomic(path, &model_to_bytes(tensors, meta)?)
}

/// Reads and checks a model file (see [`read_file`], [`model_from_bytes`]); messages name its
/// path.
pub fn load_model(path: &Path) -> Result<(Vec<Tensor>, ModelMeta), Error> {
    model_from_bytes(&read_file(path)?, &path.display().to_string())
}

/// The largest JSON header a safetensors file may have (the safetensors crate's own limit).
const HEADER_MAX_BYTES: u64 = 100_000_000;

/// A safetensors file's bytes (a model or a training state), never more than its header
/// declares: a regular file only ([`files::open_regular`](crate::files::open_regular)); its
/// first 8 bytes and its header's tensor offsets give the file's size, and a file of another
/// size is refused before its tensors are read. Where the header cannot be read, the bytes read
/// so far are returned and [`from_bytes`] names the problem.
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let what = path.display();
    let (file, len) = crate::files::open_regular(path)?;
    let io = |e| Error::io(path, e);
    let mut rest = file.take(len);
    let mut bytes = Vec::new();
    (&mut rest).take(8).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() < 8 || bytes.starts_with(b"PK\x03\x04") {
        return Ok(bytes);
    }
    let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if header > HEADER_MAX_BYTES.min(len - 8) {
        return Err(Error::Model(format!(
            "{what}: not a safetensors file, or truncated (its header claims {header} bytes; the file has {len})"
        )));
    }
    (&mut rest)
        .take(header)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes[8..])
        .ok()
        .and_then(|h| data_end(&h))
        .and_then(|end| end.checked_add(8 + header));
    match declared {
        None => Ok(bytes),
        Some(size) if size != len => Err(Error::Model(format!(
            "{what}: {len} bytes, but its header declares {size} (truncated, or something after the tensors)"
        ))),
        Some(size) => {
            (&mut rest)
                .take(size - bytes.len() as u64)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            Ok(bytes)
        }
    }
}

/// Where the data a safetensors header describes ends: the largest `data_offsets` end (`None`
/// where the header is not a map of tensors with offsets).
fn data_end(header: &serde_json::Value) -> Option<u64> {
    let mut end = 0;
    for (name, tensor) in header.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        end = end.max(tensor.get("data_offsets")?.as_array()?.get(1)?.as_u64()?);
    }
    Some(end)
}

/// The arrays a model of `config` saved by the seed holds, (shape, what), in its order: per conv
/// layer W [cout, cin, 3, 3], b, BN beta, gamma, mean, inv_std [cout]; then dense W
/// [in, classes], b, BN beta, gamma, mean, inv_std [classes] (the seed's models: 10 classes).
pub fn lasagne_shapes(config: &NetConfig) -> Vec<(Vec<usize>, String)> {
    let mut out = Vec::new();
    let mut layer = |w: Vec<usize>, n: usize, name: &str| {
        out.push((w, format!("{name} W")));
        for part in ["b", "BN beta", "BN gamma", "BN mean", "BN inv_std"] {
            out.push((vec![n], format!("{name} {part}")));
        }
    };
    for (k, l) in config.conv_layers().iter().enumerate() {
        layer(vec![l.cout, l.cin, 3, 3], l.cout, &format!("conv{k}"));
    }
    layer(
        vec![config.features(), config.classes],
        config.classes,
        "dense",
    );
    out
}

/// Refuses arrays of other shapes than those a model of `config` saved by the seed holds
/// ([`lasagne_shapes`]), from the shapes alone: an `.npz` is checked before its data is read.
pub fn check_lasagne_shapes(config: &NetConfig, shapes: &[Vec<usize>]) -> Result<(), Error> {
    let want = lasagne_shapes(config);
    if shapes.len() != want.len() {
        return Err(Error::Model(format!(
            "the .npz holds {} arrays; a network of {} conv layers saved by the seed holds {}",
            shapes.len(),
            config.conv_layers().len(),
            want.len()
        )));
    }
    for (i, (s, (shape, what))) in shapes.iter().zip(&want).enumerate() {
        if s != shape {
            return Err(Error::Model(format!(
                "array arr_{i} ({what}) has shape {s:?}, expected {shape:?}"
            )));
        }
    }
    Ok(())
}

/// Converts the parameter arrays of a model saved by the seed (`np.savez(*get_all_param_values)`,
/// Lasagne order: per conv layer W, b, BN beta, gamma, mean, inv_std; then dense W (in×classes), b,
/// BN beta, gamma, mean, inv_std) into our named tensors. Lasagne convolves (flips kernels);
/// our convs cross-correlate, so kernels are flipped here; the dense W is transposed.
pub fn from_lasagne(
    config: &NetConfig,
    arrays: &[(Vec<usize>, Vec<f32>)],
) -> Result<Vec<Tensor>, Error> {
    let shapes: Vec<Vec<usize>> = arrays.iter().map(|a| a.0.clone()).collect();
    check_lasagne_shapes(config, &shapes)?;
    let layers = config.conv_layers();
    let features = config.features();
    // the shapes are checked: arr_i is what lasagne_shapes says it is
    let values = |i: usize| &arrays[i].1;
    let mut out = Vec::new();
    for (k, l) in layers.iter().enumerate() {
        let base = 6 * k;
        let w = values(base);
        let mut flipped = vec![0.0; w.len()];
        for (plane, dst) in flipped.chunks_mut(9).enumerate() {
            for r in 0..9 {
                dst[r] = w[plane * 9 + 8 - r];
            }
        }
        out.push(Tensor::new(
            format!("conv{k}.weight"),
            vec![l.cout, l.cin, 3, 3],
            flipped,
        ));
        let c = vec![l.cout];
        for (j, name) in [
            (1, format!("conv{k}.bias")),
            (2, format!("bn{k}.beta")),
            (3, format!("bn{k}.gamma")),
            (4, format!("bn{k}.mean")),
            (5, format!("bn{k}.inv_std")),
        ] {
            out.push(Tensor::new(name, c.clone(), values(base + j).clone()));
        }
    }
    let base = 6 * layers.len();
    let w = values(base);
    let k = config.classes;
    let mut t = vec![0.0; w.len()];
    for i in 0..features {
        for o in 0..k {
            t[o * features + i] = w[i * k + o];
        }
    }
    out.push(Tensor::new("dense.weight", vec![k, features], t));
    for (j, name) in [
        (1, "dense.bias"),
        (2, "bn_out.beta"),
        (3, "bn_out.gamma"),
        (4, "bn_out.mean"),
        (5, "bn_out.inv_std"),
    ] {
        out.push(Tensor::new(name, vec![k], values(base + j).clone()));
    }
    Ok(out)
}

/// Parses the seed's model name `{ds}_{nl}_{sym}_quantized_{nla}_{nfa}_{nlb}_{nfb}_{nlc}_{nfc}_{nb}bits`
/// (`_float_` when not quantized) into the data set name and the network.
pub fn parse_seed_name(stem: &str) -> Result<(String, NetConfig), Error> {
    let bad = || {
        Error::Model(format!("'{stem}' is not a seed model name ({{ds}}_{{nl}}_{{sym}}_quantized_{{nla}}_{{nfa}}_{{nlb}}_{{nfb}}_{{nlc}}_{{nfc}}_{{nb}}bits); give the network explicitly"))
    };
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() != 11 {
        return Err(bad());
    }
    let kind: crate::data::DatasetKind = parts[0].parse().map_err(|_| bad())?;
    let nonlinearity = parts[1].parse().map_err(|_| bad())?;
    let sym = match parts[2] {
        "0" => false,
        "1" => true,
        _ => return Err(bad()),
    };
    let quantized = match parts[3] {
        "quantized" => true,
        "float" => false,
        _ => return Err(bad()),
    };
    let n = |i: usize| parts[i].parse::<usize>().map_err(|_| bad());
    let bits = parts[10]
        .strip_suffix("bits")
        .and_then(|b| b.parse().ok())
        .ok_or_else(bad)?;
    let (c, h, w) = kind.chw();
    let config = NetConfig {
        input: [c, h, w],
        // the seed's models score CIFAR-10's or MNIST's ten classes
        classes: crate::backend::DEFAULT_CLASSES,
        blocks: [(n(4)?, n(5)?), (n(6)?, n(7)?), (n(8)?, n(9)?)],
        quantized,
        bits,
        nonlinearity,
        sym,
        net: None,
    };
    config.validate()?;
    Ok((kind.name().to_string(), config))
}
