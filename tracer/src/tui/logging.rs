//! Where log messages go while the live view owns the screen: a file, never
//! the terminal. `main` opens it before logging starts; the help shows it.

use std::{
    fs::{self, File},
    io,
    os::unix::fs::OpenOptionsExt as _,
    path::PathBuf,
    sync::OnceLock,
};

static PATH: OnceLock<PathBuf> = OnceLock::new();

/// The log file of this run, once [`open`] has created it.
pub fn path() -> Option<PathBuf> {
    PATH.get().cloned()
}

/// Creates `$XDG_STATE_HOME/tracer/tracer-<pid>.log`, or
/// `/tmp/tracer-<pid>.log` when XDG_STATE_HOME is not set. The file must not
/// exist yet (no following a planted symlink in /tmp) and only its owner may
/// read it.
pub fn open() -> io::Result<(PathBuf, File)> {
    let dir = match std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        Some(state) => {
            let dir = PathBuf::from(state).join("tracer");
            fs::create_dir_all(&dir)?;
            dir
        }
        None => std::env::temp_dir(),
    };
    let path = dir.join(format!("tracer-{}.log", std::process::id()));
    let file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let _ = PATH.set(path.clone());
    Ok((path, file))
}

/// Removes the log file again when nothing was logged to it.
pub fn remove_if_empty() {
    let empty = |path: &PathBuf| fs::metadata(path).is_ok_and(|m| m.len() == 0);
    if let Some(path) = PATH.get().filter(|p| empty(p)) {
        let _ = fs::remove_file(path);
    }
}
