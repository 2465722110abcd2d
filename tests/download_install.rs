//! `qnn download`'s check-and-unpack path on local files (CI has no network): the MD5 is
//! verified, a .tar.gz is unpacked beside the archive, and a wrong checksum or an archive entry
//! that escapes the folder is refused.

use qnn::data::{install_download, md5_hex};

fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, path, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qnn-dl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn known_md5() {
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
}

#[test]
fn archive_is_checked_and_unpacked() {
    let rec = [[3u8].as_slice(), &[9u8; 3072]].concat();
    let archive = tar_gz(&[
        ("cifar-10-batches-bin/test_batch.bin", &rec),
        ("cifar-10-batches-bin/readme.html", b"hi"),
    ]);
    let d = dir("ok");
    install_download(&archive, "cifar-10-binary.tar.gz", &md5_hex(&archive), &d).unwrap();
    assert_eq!(
        std::fs::read(d.join("cifar-10-batches-bin/test_batch.bin")).unwrap(),
        rec
    );
    assert_eq!(
        std::fs::read(d.join("cifar-10-binary.tar.gz")).unwrap(),
        archive
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn wrong_checksum_is_refused_and_nothing_written() {
    let d = dir("bad");
    let e = install_download(
        b"corrupt",
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        &d,
    )
    .unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(!d.join("train-images-idx3-ubyte.gz").exists());
}

#[test]
fn escaping_archive_entries_are_refused() {
    // tar::Builder refuses to write such a path, so set the raw header name
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..11].copy_from_slice(b"../evil.bin");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append(&h, &b"x"[..]).unwrap();
    let archive = builder.into_inner().unwrap().finish().unwrap();
    let d = dir("evil");
    let e = install_download(&archive, "x.tar.gz", &md5_hex(&archive), &d).unwrap_err();
    assert!(e.to_string().contains("outside the data folder"), "{e}");
}
