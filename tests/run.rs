//! The library's training run (`qnn::run::Run`), as every front end drives it: resuming from the
//! state bytes equals an uninterrupted run (random crops included), the stop flag, fine-tuning that keeps the starting
//! model, a resume refused with the changed setting named, and data sets parsed from bytes.

mod common;

use std::sync::atomic::AtomicBool;

use common::{bars, cpu, gpu};
use qnn::data::{self, DatasetKind};
use qnn::run::{EpochOutcome, Run, RunSettings, Start};
use qnn::train::EpochReport;
use qnn::{Backend, Error};

fn settings() -> RunSettings {
    let mut s = RunSettings::new(DatasetKind::Mnist);
    s.net.blocks = [(1, 4), (1, 4), (1, 8)];
    s.options.epochs = 3;
    s.options.batch = 20;
    s.options.lr_start = 0.01;
    s.options.lr_final = 0.001;
    s.valid = Some(40);
    s
}

fn epochs<B: Backend>(b: &mut B, run: &mut Run, n: usize) {
    let stop = AtomicBool::new(false);
    for _ in 0..n {
        match pollster::block_on(run.next_epoch(b, &stop, |_| false)).unwrap() {
            EpochOutcome::Finished(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// The history without the wall-clock fields.
fn timeless(h: &[EpochReport]) -> Vec<EpochReport> {
    h.iter()
        .map(|r| EpochReport {
            seconds: 0.0,
            images_per_second: 0.0,
            ..r.clone()
        })
        .collect()
}

fn resume_equals_straight<B: Backend>(b: &mut B) {
    resume_equals_straight_with(b, settings);
}

fn resume_equals_straight_with<B: Backend>(b: &mut B, settings: fn() -> RunSettings) {
    let data = bars(200, 40);
    let mut straight = pollster::block_on(Run::new(b, settings(), &data, Start::Fresh)).unwrap();
    epochs(b, &mut straight, 3);
    assert!(straight.is_finished());

    let mut first = pollster::block_on(Run::new(b, settings(), &data, Start::Fresh)).unwrap();
    epochs(b, &mut first, 2);
    let state = pollster::block_on(first.state_bytes(b)).unwrap();
    let best = first.best_model().map(<[u8]>::to_vec);
    let start = Start::Resume {
        state: &state,
        best_model: best.as_deref(),
    };
    let mut resumed = pollster::block_on(Run::new(b, settings(), &data, start)).unwrap();
    assert_eq!(resumed.state().epoch, 2);
    epochs(b, &mut resumed, 1);
    assert_eq!(resumed.state(), straight.state());
    assert_eq!(timeless(resumed.history()), timeless(straight.history()));
    // the same tensors and metadata (the file's metadata order is not fixed)
    let parse =
        |r: &Run| qnn::checkpoint::model_from_bytes(r.best_model().unwrap(), "best").unwrap();
    assert_eq!(parse(&resumed), parse(&straight));
}

#[test]
fn resume_from_state_bytes_equals_a_straight_run_on_cpu() {
    resume_equals_straight(&mut cpu());
}

#[test]
fn resume_from_state_bytes_equals_a_straight_run_on_gpu() {
    let Some(mut g) = gpu() else { return };
    resume_equals_straight(&mut g);
}

/// The small run with random crops of ±2 pixels (and flips).
fn cropped() -> RunSettings {
    cropped_by(2)
}

fn cropped_by(pad: usize) -> RunSettings {
    let mut s = settings();
    s.options.crop_pad = pad;
    s
}

#[test]
fn resume_with_crops_equals_a_straight_run_on_cpu() {
    resume_equals_straight_with(&mut cpu(), cropped);
}

#[test]
fn resume_with_crops_equals_a_straight_run_on_gpu() {
    let Some(mut g) = gpu() else { return };
    resume_equals_straight_with(&mut g, cropped);
}

/// Crops change what trains (the same run with crops of 0 is another run: resuming it is
/// refused naming the setting), and the same seed crops the same way again.
#[test]
fn crops_train_another_run_repeatably() {
    let mut b = cpu();
    let data = bars(200, 40);
    let history = |b: &mut qnn::CpuBackend, s: RunSettings| {
        let mut run = pollster::block_on(Run::new(b, s, &data, Start::Fresh)).unwrap();
        epochs(b, &mut run, 1);
        let state = pollster::block_on(run.state_bytes(b)).unwrap();
        (timeless(run.history()), state)
    };
    let (plain, _) = history(&mut b, settings());
    let (crops, state) = history(&mut b, cropped());
    let (again, _) = history(&mut b, cropped());
    assert_ne!(plain, crops, "crops of ±2 trained the run without crops");
    assert_eq!(crops, again, "the same seed cropped differently");
    let start = Start::Resume {
        state: &state,
        best_model: None,
    };
    match pollster::block_on(Run::new(&mut b, settings(), &data, start)) {
        Err(Error::ResumeMismatch(c)) => {
            let c: Vec<_> = c.iter().map(|c| (c.setting, &*c.saved, &*c.now)).collect();
            assert_eq!(c, [("crop padding", "2", "0")]);
        }
        other => panic!("{:?}", other.err()),
    }
}

/// The shifts: in [−pad, pad]², every value drawn, a function of (seed, epoch, place) alone;
/// none at pad 0.
#[test]
fn crop_shifts_cover_the_square_and_depend_on_seed_epoch_and_place() {
    use qnn::train::crop_shift;
    for pad in [0usize, 1, 4, 15] {
        let p = pad as i32;
        let mut seen = std::collections::HashSet::new();
        for place in 0..20_000 {
            let s = crop_shift(1234, 3, place, pad);
            assert!(s.dy.abs() <= p && s.dx.abs() <= p, "{s:?} at pad {pad}");
            assert_eq!(s, crop_shift(1234, 3, place, pad));
            seen.insert((s.dy, s.dx));
        }
        assert_eq!(seen.len(), (2 * pad + 1).pow(2), "pad {pad}: {seen:?}");
    }
    // the definition of docs/spec.md §7, written out again
    let m = |z: u64| {
        let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for (seed, epoch, place, pad) in [
        (1234u64, 1usize, 0usize, 4usize),
        (7, 12, 4095, 15),
        (u64::MAX, 3, 77, 1),
    ] {
        let h = m(m(m(seed ^ 0x6372_6F70) ^ epoch as u64) ^ place as u64);
        let n = 2 * pad as u64 + 1;
        let (dy, dx) = (((h >> 32) * n) >> 32, ((h & 0xFFFF_FFFF) * n) >> 32);
        let want = (dy as i32 - pad as i32, dx as i32 - pad as i32);
        let got = crop_shift(seed, epoch, place, pad);
        assert_eq!(
            (got.dy, got.dx),
            want,
            "seed {seed}, epoch {epoch}, place {place}"
        );
    }
    let draws =
        |seed, epoch| -> Vec<_> { (0..64).map(|k| crop_shift(seed, epoch, k, 4)).collect() };
    assert_ne!(draws(1234, 1), draws(1234, 2), "epochs");
    assert_ne!(draws(1234, 1), draws(1235, 1), "seeds");
}

/// A crop padding of the image's side or more, or above 15, is refused naming the setting; the
/// options of a state saved before crops existed read as no crops, and no crops are not
/// written (such files stay as they were).
#[test]
fn impossible_crops_are_refused_and_old_options_read_as_none() {
    // pictures of 8×11 (a folder's shape is the network's input)
    let small = |pad| {
        let mut s = settings();
        s.dataset = DatasetKind::Folder;
        s.net.input = [3, 8, 11];
        s.options.crop_pad = pad;
        s
    };
    for (s, why) in [
        (small(8), "less than the images' side (8 pixels"),
        (small(40), "at most 15"),
        (cropped_by(16), "at most 15"),
    ] {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.starts_with("crop padding") && e.contains(why), "{e}");
    }
    small(7).validate().unwrap();
    cropped_by(15).validate().unwrap();
    let json = serde_json::to_string(&settings().options).unwrap();
    assert!(!json.contains("crop"), "{json}");
    let back: qnn::train::TrainOptions = serde_json::from_str(&json).unwrap();
    assert_eq!(back, settings().options);
    let json = serde_json::to_string(&cropped().options).unwrap();
    assert!(json.contains("\"crop_pad\":2"), "{json}");
}

#[test]
fn stop_flag_interrupts_without_counting_the_epoch() {
    let mut b = cpu();
    let data = bars(200, 40);
    let mut run = pollster::block_on(Run::new(&mut b, settings(), &data, Start::Fresh)).unwrap();
    let stop = AtomicBool::new(true);
    let out = pollster::block_on(run.next_epoch(&mut b, &stop, |_| false)).unwrap();
    assert_eq!(
        out,
        EpochOutcome::Interrupted {
            epoch: 1,
            steps_done: 0
        }
    );
    assert_eq!(run.state().epoch, 0);
    assert!(run.best_model().is_none() && run.history().is_empty());
    // stopping mid-epoch: the progress callback raises the flag after 3 steps
    let stop = AtomicBool::new(false);
    let out = pollster::block_on(run.next_epoch(&mut b, &stop, |info| {
        if info.step == 3 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        false
    }))
    .unwrap();
    assert_eq!(
        out,
        EpochOutcome::Interrupted {
            epoch: 1,
            steps_done: 3
        }
    );
    assert_eq!(run.state().epoch, 0);
}

#[test]
fn fine_tuning_keeps_the_starting_model_until_an_epoch_does_as_well() {
    let mut b = cpu();
    let data = bars(200, 40);
    let mut run = pollster::block_on(Run::new(&mut b, settings(), &data, Start::Fresh)).unwrap();
    epochs(&mut b, &mut run, 3);
    let model = run.best_model().unwrap().to_vec();
    // a learning rate that wrecks the network: the starting model stays the best
    let mut wreck = settings();
    wreck.options.epochs = 1;
    wreck.options.lr_start = 50.0;
    wreck.options.lr_final = 50.0;
    wreck.options.optimizer = qnn::train::Optimizer::Sgd { momentum: 0.0 };
    let mut ft =
        pollster::block_on(Run::new(&mut b, wreck, &data, Start::FineTune(&model))).unwrap();
    assert!(ft.best_is_starting_model());
    let stop = AtomicBool::new(false);
    match pollster::block_on(ft.next_epoch(&mut b, &stop, |_| false)) {
        Ok(EpochOutcome::Finished(r)) => assert!(!r.improved, "{r:?}"),
        Err(Error::NonFinite(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(ft.best_model(), Some(&model[..]));
}

#[test]
fn resume_with_other_settings_is_refused_naming_them() {
    let mut b = cpu();
    let data = bars(200, 40);
    let mut run = pollster::block_on(Run::new(&mut b, settings(), &data, Start::Fresh)).unwrap();
    epochs(&mut b, &mut run, 1);
    let state = pollster::block_on(run.state_bytes(&mut b)).unwrap();
    let mut other = settings();
    other.valid = Some(60);
    other.options.seed = 9;
    let start = Start::Resume {
        state: &state,
        best_model: None,
    };
    match pollster::block_on(Run::new(&mut b, other, &data, start)) {
        Err(Error::ResumeMismatch(changes)) => {
            let names: Vec<_> = changes.iter().map(|c| c.setting).collect();
            assert!(names.contains(&"validation images"), "{names:?}");
            assert!(names.contains(&"seed"), "{names:?}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("resumed another run"),
    }
    // other data
    let start = Start::Resume {
        state: &state,
        best_model: None,
    };
    match pollster::block_on(Run::new(&mut b, settings(), &bars(210, 40), start)) {
        Err(Error::ResumeMismatch(c)) => assert!(c.iter().any(|c| c.setting == "data")),
        other => panic!("{:?}", other.err()),
    }
    // not a state at all
    let start = Start::Resume {
        state: b"garbage",
        best_model: None,
    };
    assert!(pollster::block_on(Run::new(&mut b, settings(), &data, start)).is_err());
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Labels of ten classes as an IDX file holds them, a byte each.
fn label_bytes(labels: &[u16]) -> Vec<u8> {
    labels.iter().map(|&l| l as u8).collect()
}

fn idx(magic: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, magic];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

#[test]
fn data_sets_parse_from_bytes() {
    let d = bars(30, 10);
    // MNIST: names as distributed, some gzipped, in any order, with folders in the names
    let files = vec![
        (
            "dl/t10k-labels-idx1-ubyte.gz".to_string(),
            gz(&idx(1, &[10], &label_bytes(&d.test.labels))),
        ),
        (
            "train-images-idx3-ubyte".to_string(),
            idx(3, &[30, 28, 28], &d.train.pixels),
        ),
        (
            "train-labels-idx1-ubyte".to_string(),
            idx(1, &[30], &label_bytes(&d.train.labels)),
        ),
        (
            "t10k-images-idx3-ubyte.gz".to_string(),
            gz(&idx(3, &[10, 28, 28], &d.test.pixels)),
        ),
    ];
    let m = data::from_files(DatasetKind::Mnist, &files).unwrap();
    assert_eq!((m.train, m.test), (d.train.clone(), d.test.clone()));
    let missing = data::from_files(DatasetKind::Mnist, &files[1..]).unwrap_err();
    assert!(
        missing.to_string().contains("t10k-labels-idx1-ubyte"),
        "{missing}"
    );

    // CIFAR-10: the binary batches, and the same inside the official .tar.gz
    let rec = |label: u8, v: u8| {
        let mut r = vec![label];
        r.extend(vec![v; 3072]);
        r
    };
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    let batches: Vec<(String, Vec<u8>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), [rec(i as u8, 1), rec(9, i as u8)].concat()))
        .collect();
    let plain = data::from_files(DatasetKind::Cifar10, &batches).unwrap();
    assert_eq!((plain.train.len(), plain.test.len()), (10, 2));
    let mut tar = tar::Builder::new(Vec::new());
    for (n, b) in &batches {
        let mut h = tar::Header::new_gnu();
        h.set_size(b.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{n}"), &b[..])
            .unwrap();
    }
    let archive = gz(&tar.into_inner().unwrap());
    let packed = data::from_files(
        DatasetKind::Cifar10,
        &[("cifar-10-binary.tar.gz".to_string(), archive)],
    )
    .unwrap();
    assert_eq!((packed.train, packed.test), (plain.train, plain.test));
    // a truncated batch is named
    let mut bad = batches.clone();
    bad[5].1.pop();
    let e = data::from_files(DatasetKind::Cifar10, &bad).unwrap_err();
    assert!(e.to_string().contains("test_batch.bin"), "{e}");
}

/// What the window shows comes from the run itself: a probe asked for mid-epoch arrives with the
/// step, leaves training untouched (same result as a run without probes), counts every
/// activation on a level and shows the first layer's weights quantized as the forward pass uses
/// them; the confusion matrix agrees with the validation error; the explorer (a saved model on
/// the CPU) predicts what the run predicts.
#[test]
fn probes_confusion_and_explorer_match_the_run() {
    use qnn::inspect::{ConfusionMatrix, Explorer, Filters};
    use qnn::train::StepWants;
    let data = bars(140, 30);
    let s = settings();
    let mut b = cpu();
    let mut plain = pollster::block_on(Run::new(&mut b, s.clone(), &data, Start::Fresh)).unwrap();
    epochs(&mut b, &mut plain, 1);
    let mut b2 = cpu();
    let mut run = pollster::block_on(Run::new(&mut b2, s.clone(), &data, Start::Fresh)).unwrap();
    let stop = AtomicBool::new(false);
    let mut probes = Vec::new();
    let out = pollster::block_on(run.next_epoch(&mut b2, &stop, |info| {
        if let Some(p) = info.probe {
            probes.push((info.step, p));
        }
        StepWants {
            loss: true,
            probe: info.step % 2 == 1,
        }
    }))
    .unwrap();
    let EpochOutcome::Finished(r) = out else {
        panic!("{out:?}")
    };
    // a probe after every second step; training identical to the run without probes
    assert_eq!(
        probes.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![2, 4, 6, 8, 10]
    );
    assert_eq!(timeless(run.history()), timeless(plain.history()));
    let act = s.net.activation();
    let levels = act.level_values().unwrap();
    for (_, p) in &probes {
        assert_eq!(p.images, 20); // the model's buffers hold one batch
        for (h, layer) in p.activations.iter().zip(s.net.conv_layers()) {
            assert_eq!(
                h.total(),
                (20 * layer.cout * layer.h * layer.w) as u64,
                "{}",
                h.layer
            );
            assert_eq!(h.levels, levels);
            assert_eq!(h.non_finite, 0);
        }
    }
    // the last probe's filters are the model's first layer, quantized
    let model = qnn::checkpoint::model_from_bytes(run.best_model().unwrap(), "best").unwrap();
    let w = &model
        .0
        .iter()
        .find(|t| t.name == "conv0.weight")
        .unwrap()
        .values;
    let now = pollster::block_on(run.probe(&mut b2)).unwrap();
    assert_eq!(now.filters, Filters::new(&s.net, w).unwrap());
    assert!(now
        .filters
        .values
        .iter()
        .all(|v| now.filters.levels.as_ref().unwrap().contains(v)));
    // the confusion matrix is the validation error
    let m: ConfusionMatrix = pollster::block_on(run.validation_confusion(&mut b2, &data)).unwrap();
    assert_eq!(m.total(), 40);
    assert!(
        (m.error_percent() - r.val_error).abs() < 1e-9,
        "{} vs {}",
        m.error_percent(),
        r.val_error
    );
    // the explorer of the best model scores test images as the run does
    let pixels = &data.test.pixels[..10 * 784];
    let from_run = pollster::block_on(run.predict(&mut b2, pixels)).unwrap();
    let mut ex = Explorer::from_model_bytes(run.best_model().unwrap(), "best").unwrap();
    let from_file = ex.scores(pixels).unwrap();
    assert_eq!(from_run, from_file);
    assert_eq!(ex.probe(pixels).unwrap().filters, now.filters);
}
