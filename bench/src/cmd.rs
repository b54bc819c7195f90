//! Running the helper commands the benchmark needs (`ip`, `sysctl`, `sleep`,
//! `tracer doctor`, …) and showing them in messages.

use std::{
    ffi::OsStr,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// Renders a command for display: `program arg …`, a word with spaces or quotes
/// in single quotes, control characters as `\xNN`.
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(show)
        .collect::<Vec<_>>()
        .join(" ")
}

fn show(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let escaped: String = word
        .chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect();
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || "\"'$`".contains(c)) {
        format!("'{escaped}'")
    } else {
        escaped
    }
}

/// Runs `cmd` with inherited stdio, echoing it first; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its trimmed stdout if it exits 0.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_with_spaces_are_quoted() {
        let mut cmd = Command::new("sysctl");
        cmd.args(["-q", "net.ipv4.ip_local_port_range=10000 65000", ""]);
        assert_eq!(
            display(&cmd),
            "sysctl -q 'net.ipv4.ip_local_port_range=10000 65000' ''"
        );
    }
}
