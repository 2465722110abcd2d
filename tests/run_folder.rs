//! The run folder (`qnn::run_folder::RunFolder`), the files `qnn train`, the window and `qnn
//! sweep` share: their names, the lock (one run at a time), the refusal to replace a run's
//! files, the start files each start reads (and the file and flag named when one is missing),
//! and an epoch's save (model, metrics, plot and state, read back by a resume).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use qnn::data::DatasetKind;
use qnn::run::{EpochOutcome, Run, RunSettings};
use qnn::run_folder::{FolderError, RunFolder, StartBytes, StartFiles};

use common::bars;

/// A small safetensors file told apart by its one value: start files are read no further than
/// their header declares, so they must be safetensors (what they hold is Run::new's to check).
fn st(v: f32) -> Vec<u8> {
    let t = qnn::model::Tensor::new("w", vec![1], vec![v]);
    qnn::checkpoint::to_bytes(&[t], Default::default()).unwrap()
}

/// An empty folder of its own for each test.
fn fresh_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qnn-run-folder-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn settings() -> RunSettings {
    let mut s = RunSettings::new(DatasetKind::Mnist);
    s.net.blocks = [(1, 4), (1, 4), (1, 8)];
    s.options.epochs = 2;
    s.options.batch = 20;
    s.valid = Some(40);
    s
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn paths_are_the_run_name_with_the_seed_suffixes_and_a_hidden_lock() {
    let f = RunFolder::new("out", "mnist_relu_0_quantized_1_32_1_64_1_64_4bits");
    let n = "mnist_relu_0_quantized_1_32_1_64_1_64_4bits";
    assert_eq!(f.dir(), Path::new("out"));
    assert_eq!(f.name(), n);
    assert_eq!(
        f.model_path(),
        Path::new("out").join(format!("{n}.safetensors"))
    );
    assert_eq!(
        f.state_path(),
        Path::new("out").join(format!("{n}.state.safetensors"))
    );
    assert_eq!(
        f.metrics_path(),
        Path::new("out").join(format!("{n}.metrics.jsonl"))
    );
    assert_eq!(f.plot_path(), Path::new("out").join(format!("{n}.png")));
    assert_eq!(f.lock_path(), Path::new("out").join(format!(".{n}.lock")));
}

#[test]
fn a_second_lock_on_a_run_is_refused_until_the_first_is_dropped() {
    let dir = fresh_dir("lock").join("made/by/the/lock");
    let f = RunFolder::new(&dir, "run");
    let first = f
        .lock()
        .expect("the first lock, in a folder the lock makes");
    assert!(dir.is_dir());
    let second = f.lock().expect_err("a second lock while the first is held");
    assert!(matches!(second, FolderError::Busy { .. }), "{second:?}");
    let msg = second.to_string();
    assert!(msg.contains("another qnn run"), "{msg}");
    assert!(msg.contains(&f.model_path().display().to_string()), "{msg}");
    assert!(msg.contains(&f.lock_path().display().to_string()), "{msg}");
    // another run in the same folder has its own lock
    let _other = RunFolder::new(&dir, "other")
        .lock()
        .expect("another run's lock");
    drop(first);
    let _again = f.lock().expect("the lock again once the first is dropped");
}

#[test]
fn a_lock_where_no_folder_can_be_made_names_the_folder() {
    let file = fresh_dir("not-a-folder");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"a file").unwrap();
    let e = RunFolder::new(file.join("sub"), "run").lock().unwrap_err();
    assert!(matches!(e, FolderError::CreateFolder { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "--out {}: cannot create the folder",
            file.join("sub").display()
        )),
        "{e}"
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_fresh_start_is_refused_where_the_model_or_state_exists_unless_overwrite() {
    let dir = fresh_dir("refuse");
    let f = RunFolder::new(&dir, "run");
    assert_eq!(f.existing(), None);
    assert_eq!(
        f.start_bytes(StartFiles::Fresh { overwrite: false })
            .unwrap(),
        StartBytes::Fresh
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(f.state_path(), st(1.0)).unwrap();
    assert_eq!(f.existing(), Some(f.state_path()));
    std::fs::write(f.model_path(), st(2.0)).unwrap();
    assert_eq!(
        f.existing(),
        Some(f.model_path()),
        "the model is named first"
    );
    let init = dir.join("init.safetensors");
    std::fs::write(&init, st(3.0)).unwrap();
    for from in [
        StartFiles::Fresh { overwrite: false },
        StartFiles::Init {
            model: init.clone(),
            overwrite: false,
        },
    ] {
        let e = f.start_bytes(from.clone()).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, FolderError::Exists { saved: None, .. }),
            "{e:?}"
        );
        assert_eq!(
            msg,
            format!(
                "{} already exists: continue that run with --resume, fine-tune it with -ft 1, \
                 pass --overwrite to replace it, or choose another --out",
                f.model_path().display()
            )
        );
        assert!(f.refuse_overwrite(&from).is_err());
    }
    assert_eq!(
        f.start_bytes(StartFiles::Fresh { overwrite: true })
            .unwrap(),
        StartBytes::Fresh
    );
    assert_eq!(
        f.start_bytes(StartFiles::Init {
            model: init,
            overwrite: true
        })
        .unwrap(),
        StartBytes::Init(st(3.0))
    );
    // the starts that continue from the run's files are not refused
    assert_eq!(
        f.start_bytes(StartFiles::FineTune).unwrap(),
        StartBytes::FineTune(st(2.0))
    );
    assert_eq!(
        f.start_bytes(StartFiles::Resume).unwrap(),
        StartBytes::Resume {
            state: st(1.0),
            best_model: Some(st(2.0))
        }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_start_whose_file_is_missing_names_the_flag_and_the_file() {
    let dir = fresh_dir("missing");
    let f = RunFolder::new(&dir, "run");
    let missing = dir.join("nowhere.safetensors");
    for (from, flag, file) in [
        (StartFiles::FineTune, "-ft 1", f.model_path()),
        (StartFiles::Resume, "--resume", f.state_path()),
        (
            StartFiles::Init {
                model: missing.clone(),
                overwrite: false,
            },
            "--init",
            missing.clone(),
        ),
    ] {
        let e = f.start_bytes(from).unwrap_err();
        assert!(
            matches!(&e, FolderError::Read { why, .. } if *why == flag),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{flag} needs {}: ", file.display())),
            "{msg}"
        );
    }
    // a state without a model resumes with no best model yet
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(f.state_path(), st(1.0)).unwrap();
    assert_eq!(
        f.start_bytes(StartFiles::Resume).unwrap(),
        StartBytes::Resume {
            state: st(1.0),
            best_model: None
        }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_an_epoch_writes_model_metrics_plot_and_state_that_a_resume_reads_back() {
    let dir = fresh_dir("save");
    let mut b = qnn::CpuBackend::new();
    let data = bars(200, 40);
    let folder = RunFolder::new(&dir, settings().model_name());
    let _lock = folder.lock().unwrap();
    let start = folder
        .start_bytes(StartFiles::Fresh { overwrite: false })
        .unwrap();
    let mut run = pollster::block_on(Run::new(&mut b, settings(), &data, start.start())).unwrap();
    let stop = AtomicBool::new(false);
    let report = match pollster::block_on(run.next_epoch(&mut b, &stop, |_| false)).unwrap() {
        EpochOutcome::Finished(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(report.improved, "the first epoch is the best so far");
    let saved = pollster::block_on(folder.save_epoch(&mut b, &run, &report)).unwrap();
    assert!(saved.best_model);
    saved.plot.expect("the plot is drawn");

    // the four files and the lock, and no temporary file left behind
    let name = folder.name();
    assert_eq!(
        file_names(&dir),
        [
            format!(".{name}.lock"),
            format!("{name}.metrics.jsonl"),
            format!("{name}.png"),
            format!("{name}.safetensors"),
            format!("{name}.state.safetensors"),
        ]
    );
    let model = std::fs::read(folder.model_path()).unwrap();
    assert_eq!(model, run.best_model().unwrap());
    let (_, meta) = qnn::checkpoint::load_model(&folder.model_path()).unwrap();
    assert_eq!(meta.epoch, 1);
    assert_eq!(folder.read_metrics().unwrap(), run.history());
    let metrics = std::fs::read_to_string(folder.metrics_path()).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    let png = std::fs::read(folder.plot_path()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(folder.saved_progress().unwrap(), (1, 2));
    assert_eq!(RunFolder::find(&dir), Some(folder.clone()));

    // a fresh start is now refused, naming the saved epoch
    let e = folder
        .start_bytes(StartFiles::Fresh { overwrite: false })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("already exists (epoch 1, validation error "),
        "{e}"
    );

    // a resume reads the state and the best model, and continues after epoch 1
    drop(run);
    let start = folder.start_bytes(StartFiles::Resume).unwrap();
    match &start {
        StartBytes::Resume { state, best_model } => {
            assert_eq!(state, &std::fs::read(folder.state_path()).unwrap());
            assert_eq!(best_model.as_ref(), Some(&model));
        }
        other => panic!("{other:?}"),
    }
    let run = pollster::block_on(Run::new(&mut b, settings(), &data, start.start())).unwrap();
    assert_eq!(run.state().epoch, 1);
    assert_eq!(run.history().len(), 1);
    assert!(run.best_model().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn find_names_a_folders_run_after_its_state_else_its_model_and_ignores_hidden_files() {
    let dir = fresh_dir("find");
    assert_eq!(RunFolder::find(&dir), None, "no folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".hidden.safetensors.tmp1"), b"").unwrap();
    std::fs::write(dir.join(".run.lock"), b"").unwrap();
    std::fs::write(dir.join("train.log"), b"").unwrap();
    assert_eq!(RunFolder::find(&dir), None, "only hidden files and a log");
    std::fs::write(dir.join("run.safetensors"), b"").unwrap();
    assert_eq!(RunFolder::find(&dir), Some(RunFolder::new(&dir, "run")));
    std::fs::write(dir.join("run.state.safetensors"), b"").unwrap();
    std::fs::write(dir.join("run.metrics.jsonl"), b"").unwrap();
    assert_eq!(RunFolder::find(&dir), Some(RunFolder::new(&dir, "run")));
    std::fs::remove_file(dir.join("run.safetensors")).unwrap();
    assert_eq!(
        RunFolder::find(&dir),
        Some(RunFolder::new(&dir, "run")),
        "a state alone names the run"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
