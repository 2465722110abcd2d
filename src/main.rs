//! The `qnn` command line: train, eval, info, bench, download, import-npz.

mod cli;
#[cfg(feature = "gui")]
mod gui;

use std::process::ExitCode;

#[cfg(feature = "gui")]
use cli::args::Command;
use cli::args::{seed_args, Cli};

/// Mesa's drivers print "error: XDG_RUNTIME_DIR is invalid or not set" before any output of
/// ours when the variable is missing (cron, ssh without a session, containers): give them a
/// private directory instead.
fn ensure_runtime_dir() {
    let ok = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .is_some_and(|d| d.is_dir());
    if ok {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("qnn-runtime-{user}"));
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // still single-threaded here: no other thread reads the environment
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

fn main() -> ExitCode {
    ensure_runtime_dir();
    let args = seed_args(std::env::args());
    let matches = match <Cli as clap::CommandFactory>::command().try_get_matches_from(&args) {
        Ok(m) => m,
        // --help and --version print and succeed; a flag or value the parser refuses is a
        // refusal like any other: its message, and exit code 1
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    #[cfg(feature = "gui")]
    if let Command::Gui(g) = cli.command {
        let flags_given = matches.subcommand_matches("gui").is_some_and(|m| {
            m.ids().any(|id| {
                !matches!(
                    id.as_str(),
                    "start" | "exit_when_done" | "screenshot" | "model"
                ) && m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
            })
        });
        return exit_code(gui::gui(gui::Launch {
            settings: match g.train.gui_settings() {
                Ok(s) => s,
                Err(e) => return exit_code(Err(e)),
            },
            resume: g.train.resume,
            flags_given,
            start: g.start,
            exit_when_done: g.exit_when_done,
            screenshot: g.screenshot,
            model: g.model,
        }));
    }
    exit_code(cli::run(cli))
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<cli::Interrupted>().is_some() => {
            eprintln!("{e:#}");
            // the shell's code for a run ended by SIGINT
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
