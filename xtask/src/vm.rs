//! Runs commands inside Debian's 6.1 kernel under virtme-ng, in one boot.
//!
//! The guest sees the host's filesystem (read-only, with a writable overlay on
//! /tmp), so binaries built here run there unchanged. One generated shell script
//! runs every job and prints a marker line with each exit status; the markers, not
//! vng's own exit status, decide what passed, and a missing marker means the job
//! never finished (the VM crashed or timed out).

use std::{
    collections::HashMap,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::tools;

/// Prefix of the lines the guest script prints for the host to parse.
const MARKER: &str = "::xtask-vm::";

const KERNEL_GLOB_DIR: &str = "/boot";
const KERNEL_PREFIX: &str = "vmlinuz-6.1.";

/// One command to run in the guest.
#[derive(Debug, Clone)]
pub struct Job {
    /// Shown in the output and the results.
    pub name: String,
    pub argv: Vec<String>,
    /// Environment for this job only, on top of the VM-wide one.
    pub env: Vec<(String, String)>,
}

/// How the guest should be booted.
#[derive(Debug, Clone)]
pub struct Vm {
    pub kernel: PathBuf,
    pub memory: String,
    pub cpus: u32,
    pub timeout: Duration,
}

/// What came back from the guest.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Exit status of each job, in order; `None` if the job never reported one.
    pub statuses: Vec<Option<i32>>,
    /// `uname -r` inside the guest, if the script got that far.
    pub kernel_release: Option<String>,
    /// Whether the script ran to its end.
    pub finished: bool,
    /// Whether the host gave up waiting and killed the VM.
    pub timed_out: bool,
    /// vng's own exit code (informational only).
    pub vng_code: Option<i32>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn all_passed(&self) -> bool {
        self.finished && !self.statuses.is_empty() && self.statuses.iter().all(|s| *s == Some(0))
    }
}

impl Vm {
    /// The 6.1 kernel installed by `cargo xtask setup` (the newest, if several).
    pub fn find_kernel() -> Result<PathBuf> {
        let mut kernels: Vec<PathBuf> = fs::read_dir(KERNEL_GLOB_DIR)
            .with_context(|| format!("reading {KERNEL_GLOB_DIR}"))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with(KERNEL_PREFIX))
            })
            .collect();
        kernels.sort_by_cached_key(|path| version_key(&path.to_string_lossy()));
        kernels.pop().with_context(|| {
            format!(
                "no {KERNEL_GLOB_DIR}/{KERNEL_PREFIX}* kernel image: run `cargo xtask setup` \
                 (it installs Debian's linux-image-amd64)"
            )
        })
    }

    /// Boots the VM once and runs `jobs` in order in `workdir`, with `env` exported.
    /// Everything the jobs print is passed through to stdout.
    pub fn run(
        &self,
        script_path: &Path,
        workdir: &Path,
        env: &[(String, String)],
        jobs: &[Job],
    ) -> Result<Outcome> {
        let vng = tools::find_program("vng")
            .context("`vng` (virtme-ng) not found: run `cargo xtask setup`")?;
        if let Some(dir) = script_path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(script_path, script(workdir, env, jobs))
            .with_context(|| format!("writing {}", script_path.display()))?;
        fs::set_permissions(script_path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", script_path.display()))?;

        let mut cmd = tools::command(vng);
        cmd.arg("-r")
            .arg(&self.kernel)
            .args(["--user", "root", "--disable-kvm"])
            .args(["--memory", &self.memory])
            .args(["--cpus", &self.cpus.to_string()])
            .arg("--exec")
            .arg(format!("sh {}", quote(&script_path.to_string_lossy())))
            .current_dir(workdir)
            .stdin(Stdio::null())
            // Both piped: qemu reopens its stdout and stderr through /proc/self/fd,
            // which truncates them when they are regular files (a CI log, say).
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        println!("$ {}", tools::display(&cmd));
        let started = Instant::now();
        let mut child = cmd.spawn().context("could not start vng")?;
        let stdout = child.stdout.take().context("vng's stdout")?;
        let mut stderr = child.stderr.take().context("vng's stderr")?;
        let stderr_copier = thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::stderr());
        });

        let jobs_len = jobs.len();
        let reader = thread::spawn(move || {
            let mut outcome = Outcome {
                statuses: vec![None; jobs_len],
                ..Outcome::default()
            };
            let out = std::io::stdout();
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            // Byte lines: test output need not be UTF-8, and the pipe must be drained
            // to the end whatever it carries.
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                match parse_marker(line) {
                    Some(Marker::Kernel(release)) => outcome.kernel_release = Some(release),
                    Some(Marker::Status(index, code)) => {
                        if let Some(slot) = outcome.statuses.get_mut(index) {
                            *slot = Some(code);
                        }
                    }
                    Some(Marker::Done) => outcome.finished = true,
                    None => {
                        let mut out = out.lock();
                        let _ = writeln!(out, "{line}");
                        let _ = out.flush();
                    }
                }
                buf.clear();
            }
            outcome
        });

        let (code, timed_out) = wait_with_timeout(&mut child, self.timeout)?;
        let mut outcome = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the thread reading the VM's output panicked"))?;
        let _ = stderr_copier.join();
        outcome.vng_code = code;
        outcome.timed_out = timed_out;
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }
}

/// Waits for `child`; past `timeout`, kills it and everything it started (vng runs
/// qemu through a shell and virtme-run). Returns its exit code and whether it timed
/// out.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<(Option<i32>, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for vng")? {
            return Ok((status.code(), false));
        }
        if Instant::now() >= deadline {
            eprintln!(
                "error: the VM did not finish within {}s; killing it",
                timeout.as_secs()
            );
            kill_tree(child.id());
            let status = child.wait().context("waiting for the killed vng")?;
            return Ok((status.code(), true));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// SIGKILLs `pid` and all its descendants (found through /proc).
fn kill_tree(pid: u32) {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …: comm may contain spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(child);
            }
        }
    }
    let mut stack = vec![pid];
    let mut all = Vec::new();
    while let Some(p) = stack.pop() {
        all.push(p);
        if let Some(kids) = children.get(&p) {
            stack.extend(kids);
        }
    }
    for p in all {
        if let Ok(p) = libc::pid_t::try_from(p) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

/// The script the guest runs.
pub fn script(workdir: &Path, env: &[(String, String)], jobs: &[Job]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Generated by `cargo xtask test`; runs inside the virtme-ng guest.\n\
         mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null\n",
    );
    s += &format!("cd {} || exit 99\n", quote(&workdir.to_string_lossy()));
    for (key, value) in env {
        s += &format!("export {key}={}\n", quote(value));
    }
    s += &format!("echo \"{MARKER} kernel $(uname -r)\"\nfailed=0\n");
    for (index, job) in jobs.iter().enumerate() {
        let argv: Vec<String> = job
            .env
            .iter()
            .map(|(key, value)| format!("{key}={}", quote(value)))
            .chain(job.argv.iter().map(|arg| quote(arg)))
            .collect();
        s += &format!(
            "echo {}\n{} 2>&1\nstatus=$?\necho \"{MARKER} status {index} $status\"\n\
             [ \"$status\" -eq 0 ] || failed=1\n",
            quote(&format!(
                "==> [vm {}/{}] {}",
                index + 1,
                jobs.len(),
                job.name
            )),
            argv.join(" "),
        );
    }
    s += &format!("echo \"{MARKER} done\"\nexit $failed\n");
    s
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Kernel(String),
    Status(usize, i32),
    Done,
}

fn parse_marker(line: &str) -> Option<Marker> {
    let rest = line.trim().strip_prefix(MARKER)?.trim();
    let mut words = rest.split_whitespace();
    match words.next()? {
        "kernel" => Some(Marker::Kernel(words.next().unwrap_or_default().to_owned())),
        "status" => {
            let index = words.next()?.parse().ok()?;
            let code = words.next()?.parse().ok()?;
            Some(Marker::Status(index, code))
        }
        "done" => Some(Marker::Done),
        _ => None,
    }
}

/// Quotes `s` for sh.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=+:,@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Sort key that orders `6.1.0-9` before `6.1.0-56`.
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let mut text = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_digit()) {
            text.push(c);
        }
        let mut digits = String::new();
        while let Some(c) = chars.next_if(char::is_ascii_digit) {
            digits.push(c);
        }
        key.push((0, text));
        key.push((digits.parse().unwrap_or(0), String::new()));
    }
    key
}

/// Finds the kernel image and vng, so a missing one is reported before anything is
/// built or booted. Returns the kernel image.
pub fn check_prerequisites() -> Result<PathBuf> {
    let kernel = Vm::find_kernel()?;
    if tools::find_program("vng").is_none() {
        bail!("`vng` (virtme-ng) not found: run `cargo xtask setup`");
    }
    Ok(kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse() {
        assert_eq!(
            parse_marker("::xtask-vm:: status 2 101\r"),
            Some(Marker::Status(2, 101))
        );
        assert_eq!(
            parse_marker("::xtask-vm:: kernel 6.1.0-56-amd64"),
            Some(Marker::Kernel("6.1.0-56-amd64".into()))
        );
        assert_eq!(parse_marker("::xtask-vm:: done"), Some(Marker::Done));
        assert_eq!(parse_marker("test result: ok"), None);
        assert_eq!(parse_marker("::xtask-vm:: status x 1"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("/a/b-c"), "/a/b-c");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut v = vec!["vmlinuz-6.1.0-56-amd64", "vmlinuz-6.1.0-9-amd64"];
        v.sort_by_cached_key(|s| version_key(s));
        assert_eq!(v, ["vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-56-amd64"]);
    }

    #[test]
    fn script_reports_each_job() {
        let jobs = [
            Job {
                name: "a".into(),
                argv: vec!["true".into()],
                env: Vec::new(),
            },
            Job {
                name: "b c".into(),
                argv: vec!["/bin/x".into(), "--flag=1".into(), "it's".into()],
                env: vec![("MODE".into(), "a b".into())],
            },
        ];
        let env = [("CI".to_owned(), "true".to_owned())];
        let s = script(Path::new("/work/main"), &env, &jobs);
        assert!(s.contains("cd /work/main || exit 99\n"));
        assert!(s.contains("export CI=true\n"));
        assert!(s.contains("\ntrue 2>&1\n"));
        assert!(s.contains("MODE='a b' /bin/x --flag=1 'it'\\''s' 2>&1\n"));
        assert!(s.contains("echo \"::xtask-vm:: status 0 $status\""));
        assert!(s.contains("echo \"::xtask-vm:: status 1 $status\""));
        assert!(s.ends_with("echo \"::xtask-vm:: done\"\nexit $failed\n"));
    }
}
