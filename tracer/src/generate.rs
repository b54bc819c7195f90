//! Shell completions (`tracer completions SHELL`), generated from the one
//! clap definition in [`crate::cli`], so they never disagree with `--help`.

use std::io::{self, Write as _};

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;

/// The name the completion scripts complete.
const BIN: &str = "tracer";

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] io::Error),
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
}
