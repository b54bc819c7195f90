//! The deployment files: `deploy/kubernetes/tracer.yaml` is valid against
//! the Kubernetes schemas (strictly: an unknown or misspelt field fails), the
//! arguments it and the Dockerfile give tracer are ones tracer accepts, and
//! the port and capabilities agree across the manifest, the Dockerfile and
//! `deploy/tracer.service`.
//!
//! The schema check runs `kubernetes-validate` (PyPI; `cargo xtask setup`
//! installs it), which bundles the schemas and needs no network and no
//! cluster. Without it that test skips with a message, except under CI
//! (`CI=true`), where it fails. Host only: `cargo xtask test` leaves this
//! suite out of the Debian 6.1 VM (it tests no kernel).

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

/// The oldest Kubernetes the manifest is written for (`appArmorProfile` in
/// a securityContext is 1.30's), and the validator's newest schemas.
const KUBERNETES_VERSIONS: &[Option<&str>] = &[Some("1.30.0"), None];

/// The resources the manifest holds, as the validator names them.
const RESOURCES: &[&str] = &[
    "namespace/tracer",
    "serviceaccount/tracer",
    "daemonset/tracer",
];

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn manifest() -> String {
    read("deploy/kubernetes/tracer.yaml")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How to run kubernetes-validate here: its script, else the module through
/// python3 (pip's script directory may not be on PATH). `None` (a skip)
/// when neither runs, which under CI is a failure.
fn validator() -> Option<Vec<String>> {
    let candidates: [&[&str]; 2] = [
        &["kubernetes-validate"],
        &["python3", "-m", "kubernetes_validate"],
    ];
    for argv in candidates {
        let runs = Command::new(argv[0])
            .args(&argv[1..])
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if runs {
            return Some(argv.iter().map(|s| (*s).to_owned()).collect());
        }
    }
    support::tool_missing("kubernetes-validate");
    None
}

#[test]
fn the_manifest_is_valid_against_the_kubernetes_schemas() {
    let Some(validator) = validator() else {
        return;
    };
    let path = repo_file("deploy/kubernetes/tracer.yaml");
    for version in KUBERNETES_VERSIONS {
        let mut cmd = Command::new(&validator[0]);
        cmd.args(&validator[1..]).arg("--strict");
        if let Some(version) = version {
            cmd.args(["--kubernetes-version", version]);
        }
        let out = cmd.arg(&path).output().expect("run kubernetes-validate");
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let against = version.unwrap_or("the newest bundled version");
        assert!(
            out.status.success(),
            "kubernetes-validate --strict rejects {} against Kubernetes {against}:\n{stdout}{stderr}",
            path.display()
        );
        // Passed, each of them: a kind the validator has no schema for
        // would only be warned about.
        for resource in RESOURCES {
            assert!(
                stdout.contains(&format!("passed for resource {resource} ")),
                "{resource} was not validated against Kubernetes {against}:\n{stdout}{stderr}"
            );
        }
    }
}

/// The items of the first block list under `key:` (`key:` then `- item`
/// lines), unquoted; comments and blank lines between items are skipped.
fn block_list(yaml: &str, key: &str) -> Vec<String> {
    let mut lines = yaml.lines();
    let wanted = format!("{key}:");
    lines
        .by_ref()
        .find(|line| line.trim() == wanted)
        .unwrap_or_else(|| panic!("no `{wanted}` block in the manifest"));
    let items: Vec<String> = lines
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map_while(|line| line.strip_prefix("- "))
        .map(|item| unquote(item.trim()).to_owned())
        .collect();
    assert!(!items.is_empty(), "`{wanted}` lists nothing");
    items
}

/// The value of the first `key: value` line.
fn scalar<'a>(yaml: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}:");
    yaml.lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .map(|value| unquote(value.trim()))
        .unwrap_or_else(|| panic!("no `{key}:` in the manifest"))
}

fn unquote(value: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value)
}

/// The Dockerfile's `CMD [...]`: the arguments the image runs tracer with.
fn dockerfile_cmd() -> Vec<String> {
    let dockerfile = read("Dockerfile");
    let cmd = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .expect("the Dockerfile has a CMD");
    serde_json::from_str(cmd).expect("the Dockerfile's CMD is a JSON array (exec form)")
}

/// `tracer ARGS --help`: clap reads ARGS first, so an unknown flag or a
/// value tracer refuses (a malformed address, say) fails before `--help`
/// is reached; when every argument parses, the help is printed and tracer
/// exits 0 without loading anything.
fn tracer_with_help(args: &[String]) -> Output {
    Command::new(TRACER)
        .args(args)
        .arg("--help")
        .output()
        .expect("run tracer")
}

#[test]
fn help_after_bad_arguments_is_refused() {
    // What the next test relies on: `--help` at the end does not hide a bad
    // argument before it.
    for bad in [
        &["--no-such-flag"][..],
        &["--prometheus", "not-an-address"],
        &["--headless", "--interval", "1ns"],
    ] {
        let args: Vec<String> = bad.iter().map(|s| (*s).to_owned()).collect();
        let out = tracer_with_help(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "tracer {bad:?} --help was accepted:\n{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn tracer_accepts_the_arguments_of_the_daemonset_and_the_image() {
    let help = Command::new(TRACER)
        .arg("--help")
        .output()
        .expect("run tracer --help");
    assert!(help.status.success());
    let help = text(&help.stdout);
    for (whose, args) in [
        ("the DaemonSet's", block_list(&manifest(), "args")),
        ("the Dockerfile's CMD", dockerfile_cmd()),
    ] {
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(
                help.contains(&format!("  {flag} ")) || help.contains(&format!("  {flag}\n")),
                "{whose} {flag} is not in tracer --help"
            );
        }
        let out = tracer_with_help(&args);
        assert!(
            out.status.success() && text(&out.stdout).contains("Usage: tracer"),
            "tracer refuses {whose} arguments {args:?}:\n{}",
            text(&out.stderr)
        );
        assert!(
            args.iter().any(|a| a == "--headless"),
            "{whose} arguments lack --headless: a pod has no terminal for the live view"
        );
    }
}

/// The port of `--prometheus ADDR` in `args`.
fn prometheus_port(args: &[String]) -> &str {
    let addr = args
        .iter()
        .skip_while(|a| *a != "--prometheus")
        .nth(1)
        .expect("--prometheus ADDR in the arguments");
    addr.rsplit_once(':').expect("ADDR has a port").1
}

#[test]
fn the_metrics_port_is_the_same_everywhere() {
    let yaml = manifest();
    let port = prometheus_port(&block_list(&yaml, "args")).to_owned();
    assert_eq!(scalar(&yaml, "containerPort"), port, "containerPort");
    assert_eq!(
        scalar(&yaml, "prometheus.io/port"),
        port,
        "scrape annotation"
    );
    assert_eq!(scalar(&yaml, "prometheus.io/scrape"), "true");
    assert_eq!(scalar(&yaml, "prometheus.io/path"), "/metrics");
    assert_eq!(prometheus_port(&dockerfile_cmd()), port, "Dockerfile CMD");
    assert!(
        read("Dockerfile").contains(&format!("\nEXPOSE {port}\n")),
        "the Dockerfile does not EXPOSE {port}"
    );
}

#[test]
fn the_daemonset_adds_the_capabilities_of_the_systemd_unit() {
    let yaml = manifest();
    let mut pod: Vec<String> = block_list(&yaml, "add")
        .iter()
        .map(|cap| format!("CAP_{cap}"))
        .collect();
    pod.sort();
    let service = read("deploy/tracer.service");
    let mut unit: Vec<String> = service
        .lines()
        .find_map(|line| line.strip_prefix("AmbientCapabilities="))
        .expect("AmbientCapabilities= in deploy/tracer.service")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    unit.sort();
    assert_eq!(pod, unit, "the DaemonSet and deploy/tracer.service differ");
    assert_eq!(block_list(&yaml, "drop"), ["ALL"]);
    assert!(
        yaml.lines().any(|line| line.trim() == "privileged: false"),
        "the container must not be privileged"
    );
    assert!(
        yaml.lines().any(|line| line.trim() == "hostPID: true"),
        "tracer needs the node's PID namespace"
    );
}
