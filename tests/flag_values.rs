//! Every number a command takes is checked before anything runs: a NaN, an infinity or a value
//! outside the flag's range is refused with the flag named and a non-zero exit — never accepted,
//! never run without end, never reported as a number.

mod common;

use common::cli::{qnn, text, tmp};

/// `qnn ARGS` is refused: exit code 1 (the parser's refusals too), the flag named in the
/// message, no panic.
#[track_caller]
fn refused_naming(args: &[&str], flag: &str) {
    let o = qnn(args);
    let t = text(&o);
    assert!(
        o.status.code() == Some(1),
        "qnn {args:?}: exit {:?}\n{t}",
        o.status.code()
    );
    assert!(
        t.contains(flag),
        "qnn {args:?}: the message should name {flag}:\n{t}"
    );
    assert!(!t.contains("panicked"), "qnn {args:?}:\n{t}");
}

#[test]
fn non_finite_and_out_of_range_numbers_are_refused_by_every_command() {
    let out = tmp("flag-values");
    let o = out.to_str().unwrap();
    // the momentum is checked whichever optimizer is chosen (Adam ignores it, but 1 or NaN is a mistake)
    // (negative numbers as --flag=VALUE, as a shell user writes them)
    for m in ["nan", "1", "-0.1", "inf"] {
        let flag = format!("--momentum={m}");
        refused_naming(&["train", &flag, "--out", o], "--momentum");
        refused_naming(
            &["train", "--optimizer", "sgd", &flag, "--out", o],
            "--momentum",
        );
    }
    for lr in ["nan", "inf", "-1", "0"] {
        refused_naming(
            &["train", &format!("--lr={lr}"), "--out", o],
            "learning rate",
        );
    }
    for s in ["nan", "-5", "inf", "1e308"] {
        let flag = format!("--seconds={s}");
        refused_naming(&["bench", "train", "--device", "cpu", &flag], "--seconds");
    }
    for t in ["nan", "-5", "1e308", "0", "nan,-5,1e308"] {
        let flag = format!("--targets={t}");
        refused_naming(&["sweep", &flag, "--out", o], "--targets");
    }
    // nothing was trained into the folder
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
}
