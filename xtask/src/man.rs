//! `cargo xtask man`: the man pages. The tracer binary writes them itself
//! (its hidden `tracer man DIR`) from the clap definition behind its
//! `--help`, so the pages document exactly the options the binary takes.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{
    ebpf,
    tools::{self, Workspace},
};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages [default: man/ in cargo's target directory,
    /// normally target/man].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Use the unoptimised build (target/debug/tracer): quicker when only the
    /// debug build is at hand. The pages are the same.
    #[arg(long)]
    pub debug: bool,
}

/// Builds tracer, has it write `tracer.1` and a page per subcommand, and says
/// where they are and how to install them.
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    let bin = ebpf::build_tracer(&ws, !args.debug)?;
    let out = out_dir(args.out.as_deref(), &ws.target_dir);
    let mut cmd = tools::command(&bin);
    cmd.arg("man").arg(&out);
    tools::run(&mut cmd).context("writing the man pages failed")?;
    println!("man pages: {}", out.display());
    println!(
        "install them with: sudo install -m644 {}/*.1 /usr/local/share/man/man1/",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--out`, or `man/` in the target directory.
fn out_dir(out: Option<&Path>, target_dir: &Path) -> PathBuf {
    out.map_or_else(|| target_dir.join("man"), Path::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_go_to_target_man_unless_told() {
        let target = Path::new("/src/tracer/target");
        assert_eq!(out_dir(None, target), Path::new("/src/tracer/target/man"));
        assert_eq!(
            out_dir(Some(Path::new("pages")), target),
            Path::new("pages")
        );
    }
}
