//! `qnn download mnist|cifar-10`: the official archives over HTTPS, MD5-checked, unpacked.

use std::path::Path;

use anyhow::{Context, Result};
use qnn::data::{install_download, DatasetKind};

/// (file, MD5, mirrors) of each data set's official files.
fn files(kind: DatasetKind) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mnist = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    ];
    match kind {
        DatasetKind::Mnist => vec![
            (
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                mnist.to_vec(),
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                mnist.to_vec(),
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                mnist.to_vec(),
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                mnist.to_vec(),
            ),
        ],
        DatasetKind::Cifar10 => vec![(
            "cifar-10-binary.tar.gz",
            "c32a1d4ab5d03f1284b67883e8d87530",
            vec!["https://www.cs.toronto.edu/~kriz/"],
        )],
        DatasetKind::MnistMini | DatasetKind::Folder => vec![],
    }
}

pub fn download(dataset: &str, dir: &Path) -> Result<()> {
    let kind = super::dataset_kind(dataset)?;
    if kind == DatasetKind::MnistMini {
        println!("mnist-mini is built into qnn: nothing to download");
        return Ok(());
    }
    if kind == DatasetKind::Folder {
        anyhow::bail!("-ds folder is your own pictures: there is nothing to download");
    }
    for (name, md5, mirrors) in files(kind) {
        let mut last_err = None;
        for base in &mirrors {
            let url = format!("{base}{name}");
            println!("downloading {url}");
            match fetch(&url) {
                Ok(bytes) => {
                    install_download(&bytes, name, md5, dir)
                        .with_context(|| format!("from {url}"))?;
                    println!(
                        "  {} bytes, MD5 ok → {}",
                        bytes.len(),
                        dir.join(name).display()
                    );
                    last_err = None;
                    break;
                }
                Err(e) => {
                    eprintln!("  failed: {e:#}");
                    last_err = Some(e);
                }
            }
        }
        if let Some(e) = last_err {
            return Err(e.context(format!("could not download {name} from any mirror")));
        }
    }
    println!("{} is ready in {}", kind.name(), dir.display());
    Ok(())
}

fn fetch(url: &str) -> Result<Vec<u8>> {
    let mut resp = ureq::get(url).call()?;
    Ok(resp
        .body_mut()
        .with_config()
        .limit(512 << 20)
        .read_to_vec()?)
}
