//! Small files that declare huge sizes are refused from their headers, before anything of that
//! size is allocated: an 800-byte `.npz` whose array header declares 10^9 floats is refused by
//! `qnn import-npz` naming the array's declared and expected shapes (the arrays' shapes are
//! checked against the network before any data is read).

mod common;

use std::io::Write;

use common::cli::{qnn_bounded, text, tmp};

/// A `.npy` v1.0 file declaring float32 `shape`, followed by only `data`.
fn npy(shape: &str, data: &[f32]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}").into_bytes();
    // magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, then \n
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    out
}

#[test]
fn an_npz_declaring_huge_arrays_is_refused_from_its_headers() {
    let d = tmp("declared-sizes");
    let f = d.join("MNIST_relu_0_quantized_1_32_1_64_1_64_4bits.npz");
    let file = std::fs::File::create(&f).unwrap();
    let mut zip = npyz::zip::ZipWriter::new(file);
    let options = npyz::zip::write::FileOptions::default();
    zip.start_file("arr_0.npy", options).unwrap();
    zip.write_all(&npy("(1000000000,)", &[0.0; 4])).unwrap();
    zip.finish().unwrap();
    assert!(std::fs::metadata(&f).unwrap().len() < 4096);

    // with arr_0 only, the count is wrong: refused before reading
    let out = d.join("m.safetensors");
    let o = qnn_bounded(&[
        "import-npz",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("holds 1 arrays"), "{t}");

    // every array present, the first declaring 10^9 floats: refused naming both shapes
    let file = std::fs::File::create(&f).unwrap();
    let mut zip = npyz::zip::ZipWriter::new(file);
    let shapes = qnn::checkpoint::lasagne_shapes(
        &qnn::checkpoint::parse_seed_name("MNIST_relu_0_quantized_1_32_1_64_1_64_4bits")
            .unwrap()
            .1,
    );
    for (i, (shape, _)) in shapes.iter().enumerate() {
        zip.start_file(format!("arr_{i}.npy"), options).unwrap();
        let declared = if i == 0 {
            "(1000000000,)".to_string()
        } else {
            format!(
                "({})",
                shape.iter().map(|d| format!("{d},")).collect::<String>()
            )
        };
        zip.write_all(&npy(&declared, &[0.0; 4])).unwrap();
    }
    zip.finish().unwrap();
    let o = qnn_bounded(&[
        "import-npz",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("arr_0 (conv0 W) has shape [1000000000], expected [32, 1, 3, 3]"),
        "{t}"
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&d);
}
