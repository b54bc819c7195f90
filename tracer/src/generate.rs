//! Shell completions (`tracer completions SHELL`) and man pages (the hidden
//! `tracer man DIR`, run by `cargo xtask man`), both generated from the one
//! clap definition in [`crate::cli`], so they never disagree with `--help`.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;

/// The name the completion scripts complete and the man pages document.
const BIN: &str = "tracer";

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] io::Error),
    #[error("cannot create the directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write the man page {}: {source}", path.display())]
    WritePage { path: PathBuf, source: io::Error },
}

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let script = completion_script(shell);
    io::stdout()
        .lock()
        .write_all(&script)
        .map_err(GenerateError::Stdout)?;
    Ok(())
}

/// The completion script for `shell`.
fn completion_script(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    script
}

/// Writes `tracer.1` and one page per visible subcommand (`tracer-doctor.1`,
/// …) to `dir`, creating it, and prints each page's path.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    let pages = write_man_pages(dir)?;
    let mut stdout = io::stdout().lock();
    for page in pages {
        writeln!(stdout, "{}", page.display()).map_err(GenerateError::Stdout)?;
    }
    Ok(())
}

/// Writes the man pages to `dir`; returns their paths, the main page first.
fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    std::fs::create_dir_all(dir).map_err(|source| GenerateError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    // Built once so that subcommands carry their full names (`tracer-doctor`);
    // `help` is left out: it has nothing to document.
    let mut cmd = Cli::command().name(BIN).disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    write_page(cmd, dir, &mut pages)?;
    Ok(pages)
}

/// Writes `cmd`'s page, then its visible subcommands' pages.
fn write_page(
    cmd: clap::Command,
    dir: &Path,
    pages: &mut Vec<PathBuf>,
) -> Result<(), GenerateError> {
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    let man = clap_mangen::Man::new(cmd);
    let path = dir.join(man.get_filename());
    man.generate_to(dir)
        .map_err(|source| GenerateError::WritePage {
            path: path.clone(),
            source,
        })?;
    pages.push(path);
    for sub in subcommands {
        write_page(sub, dir, pages)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completes_options_and_subcommands() {
        let script = String::from_utf8(completion_script(Shell::Bash)).expect("UTF-8");
        for word in [
            "--pid",
            "--headless",
            "--hooks",
            "doctor",
            "completions",
            "--json",
        ] {
            assert!(script.contains(word), "bash completions lack {word}");
        }
    }

    #[test]
    fn an_unknown_shell_is_a_usage_error() {
        use clap::Parser as _;
        let err = Cli::try_parse_from(["tracer", "completions", "tcsh"]).expect_err("no tcsh");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn every_shell_gets_a_script() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let script = String::from_utf8(completion_script(shell)).expect("UTF-8");
            assert!(script.contains("--pid"), "{shell}: {script}");
        }
    }

    #[test]
    fn man_pages_for_tracer_and_its_visible_subcommands() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pages = write_man_pages(dir.path()).expect("man pages written");
        let names: Vec<String> = pages
            .iter()
            .map(|p| {
                p.file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "tracer.1",
                "tracer-doctor.1",
                "tracer-completions.1",
                "tracer-report.1"
            ]
        );
        let main = std::fs::read_to_string(&pages[0]).expect("tracer.1");
        assert!(main.starts_with(".ie \\n(.g .ds Aq"), "not roff: {main}");
        assert!(main.contains(".TH tracer 1"), "{main}");
        assert!(main.contains("\\-\\-pid"), "{main}");
        assert!(main.contains("Exit status"), "{main}");
        // The hidden `man` subcommand is not documented.
        assert!(!main.contains("tracer\\-man"), "{main}");
        let doctor = std::fs::read_to_string(&pages[1]).expect("tracer-doctor.1");
        assert!(doctor.contains("\\-\\-json"), "{doctor}");
    }
}
