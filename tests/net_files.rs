//! `--net FILE` from the command line: a net file's network trains, and `qnn info` / `qnn energy`
//! show its layers; every bad file is refused with exit 1 and a message naming the file, the line
//! and the layer (its position and type) — never a panic, never a silently different network.

mod common;

use common::cli::{qnn, refused, text, tmp};

/// Writes `body` as `{dir}/{name}` and returns its path as a string.
fn net_file(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

fn train_net(net: &str) -> Vec<&str> {
    vec!["train", "--net", net, "-ne", "1", "--device", "cpu"]
}

/// Each kind of bad net file, from reading to placing its layers on mnist-mini's 1×28×28.
#[test]
fn bad_net_files_name_the_file_line_and_layer() {
    let d = tmp("net-files-bad");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "type.toml",
            "[[layer]]\ntype = \"conv\"\nfilters = 4\n\n[[layer]]\ntype = \"convolution\"\n\n[[layer]]\ntype = \"dense\"\n",
            &["type.toml line 5: layer 2: unknown layer type 'convolution'"],
        ),
        (
            "key.toml",
            "[[layer]]\ntype = \"conv\"\nfilter = 4\n\n[[layer]]\ntype = \"dense\"\n",
            &["key.toml line 1: layer 1 (conv): unknown key 'filter'"],
        ),
        (
            "pool.toml",
            "[[layer]]\ntype = \"conv\"\nfilters = 4\n\n[[layer]]\ntype = \"global_avg_pool\"\n\n[[layer]]\ntype = \"max_pool\"\n\n[[layer]]\ntype = \"dense\"\n",
            &["pool.toml line 8: layer 3 (max_pool): a 2×2 pool on a 1×1 input"],
        ),
        (
            "empty.toml",
            "bits = 4\n",
            &["empty.toml: no [[layer]] tables"],
        ),
        (
            "units.toml",
            "[[layer]]\ntype = \"dense\"\n\n[[layer]]\ntype = \"dense\"\n",
            &["units.toml line 1: layer 1 (dense): a hidden dense layer needs units"],
        ),
        (
            "bits.toml",
            "[[layer]]\ntype = \"conv\"\nfilters = 4\nbits = 17\n\n[[layer]]\ntype = \"dense\"\n",
            &["bits.toml line 1: layer 1 (conv): 17 bits is out of range"],
        ),
        (
            "relu1.toml",
            "nonlinearity = \"relu\"\n\n[[layer]]\ntype = \"conv\"\nfilters = 4\nbits = 1\n\n[[layer]]\ntype = \"dense\"\n",
            &["relu1.toml line 3: layer 1 (conv): relu with 1-bit (binary) activations"],
        ),
        (
            "kernel.toml",
            "[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 7\n\n[[layer]]\ntype = \"dense\"\n",
            &["kernel.toml line 1: layer 1 (conv): kernel 7: use 1, 3 or 5"],
        ),
        (
            "valid.toml",
            "[[layer]]\ntype = \"max_pool\"\n[[layer]]\ntype = \"max_pool\"\n[[layer]]\ntype = \"max_pool\"\n[[layer]]\ntype = \"max_pool\"\n[[layer]]\ntype = \"conv\"\nfilters = 2\nkernel = 5\npadding = \"valid\"\n[[layer]]\ntype = \"dense\"\n",
            &["valid.toml line 9: layer 5 (conv): a 5×5 valid convolution does not fit its 1×1 input"],
        ),
        (
            "classes.toml",
            "[[layer]]\ntype = \"dense\"\nunits = 12\n",
            &["classes.toml line 1: layer 1 (dense): the last dense layer has 12 units, the data set has 10 classes"],
        ),
        (
            "syntax.toml",
            "[[layer]]\ntype = \"conv\"\nfilters = = 4\n",
            &["syntax.toml line 3"],
        ),
        (
            "huge.toml",
            "[[layer]]\ntype = \"conv\"\nfilters = 3000000\nkernel = 5\n\n[[layer]]\ntype = \"dense\"\n",
            &["needs", "of buffers for this network"],
        ),
    ];
    for (name, body, needles) in cases {
        let path = net_file(&d, name, body);
        refused(&train_net(&path), needles);
    }
    // a missing file is named
    let missing = d.join("missing.toml");
    refused(&train_net(missing.to_str().unwrap()), &["missing.toml"]);
    // a net file and the seed's network flags together: which network is meant?
    let ok = net_file(&d, "ok.toml", "[[layer]]\ntype = \"dense\"\n");
    refused(
        &["train", "--net", &ok, "-nb", "2"],
        &["--net", "cannot be used with"],
    );
    // import-npz reads the seed's models: a net file there is refused, not ignored
    refused(
        &["import-npz", "x.npz", "--net", &ok],
        &["import-npz reads models saved by the seed"],
    );
    // a --first-bits that is not a width
    refused(&["train", "--first-bits", "9bit", "-ne", "1"], &["9bit"]);
}

/// A net file trains one epoch; `qnn info` names the network and shows each layer with its
/// widths; `qnn energy --net` counts each layer at its own widths; `--first-bits 8` on the
/// seed's flags names the model after the change and its first layer shows 8-bit weights.
#[test]
fn a_net_file_trains_and_is_shown() {
    let d = tmp("net-files-ok");
    let net = net_file(
        &d,
        "mixed.toml",
        "bits = 2\nnonlinearity = \"relu\"\n\n[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 5\nstride = 2\nw_bits = 8\n\n[[layer]]\ntype = \"global_avg_pool\"\n\n[[layer]]\ntype = \"dense\"\nunits = 16\n\n[[layer]]\ntype = \"dense\"\nw_bits = 8\n",
    );
    let out = d.join("out");
    let o = qnn(&[
        "train",
        "--net",
        &net,
        "-ne",
        "1",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("conv0 5×5/2 + bn + act"), "{t}");
    let model = out.join("mnist-mini_mixed.safetensors");
    assert!(model.is_file(), "{t}");
    let o = qnn(&["info", model.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("network 'mixed': 4 layers from a net file"),
        "{t}"
    );
    for row in [
        "conv0 5×5/2 + bn + act",
        "global avg pool",
        "dense0 + bn + act",
        "dense + bn",
    ] {
        assert!(t.contains(row), "no '{row}' in:\n{t}");
    }
    assert!(
        t.contains("2 relu"),
        "the hidden layers' 2-bit relu is not shown:\n{t}"
    );

    let o = qnn(&["energy", "--net", &net]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("dense0"), "{t}");

    let out2 = d.join("out2");
    let o = qnn(&[
        "train",
        "-nfa",
        "4",
        "-nfb",
        "4",
        "-nfc",
        "4",
        "--first-bits",
        "8",
        "--last-bits",
        "8",
        "-ne",
        "1",
        "--device",
        "cpu",
        "--out",
        out2.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let name = "mnist-mini_relu_0_quantized_1_4_1_4_1_4_4bits_first8_last8.safetensors";
    assert!(out2.join(name).is_file(), "no {name}:\n{t}");
    let first = t
        .lines()
        .find(|l| l.starts_with("conv0"))
        .unwrap_or_default()
        .to_string();
    assert!(
        first.split_whitespace().any(|w| w == "8"),
        "the first layer's weights are not 8-bit: {first}"
    );
}
