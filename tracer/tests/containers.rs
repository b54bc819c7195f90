//! Container identity for real: clients moved into docker-, containerd-,
//! Kubernetes- and systemd-style cgroups, created by the test under the
//! cgroup v2 root (found in /proc/mounts: `/sys/fs/cgroup` on a v2 host,
//! `/sys/fs/cgroup/unified` on a hybrid one), are named in tracer's CSV by
//! their container, pod and unit. The cgroups are removed afterwards.

mod support;

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use support::{CsvFile, Peer, Tracer, kernel_tests_enabled};

const HOST: &str = "127.0.0.1";

/// A cgroup path and the container, pod and unit the CSV must name for it.
type Case<'a> = (String, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// Where cgroup2 is mounted.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    mounts
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
        })
        .expect("cgroup2 is mounted (see /proc/mounts)")
}

/// Cgroups the test made, removed (deepest first) on drop.
struct Cgroups {
    made: Vec<PathBuf>,
}

impl Cgroups {
    /// Makes `path` and the directories above it that are missing.
    fn make(&mut self, path: &Path) {
        let mut missing = Vec::new();
        let mut at = path.to_owned();
        while !at.exists() {
            missing.push(at.clone());
            at = at.parent().expect("below the root").to_owned();
        }
        for dir in missing.into_iter().rev() {
            std::fs::create_dir(&dir)
                .unwrap_or_else(|e| panic!("create cgroup {}: {e}", dir.display()));
            self.made.push(dir);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.made.iter().rev() {
            // A cgroup whose last process just exited may be busy a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Moves process `pid` into the cgroup at `dir`.
fn move_into(dir: &Path, pid: u32) {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
        .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", dir.display()));
}

#[test]
fn the_csv_names_container_pod_and_unit() {
    if !kernel_tests_enabled() {
        return;
    }
    let root = cgroup2_root();
    let base = format!("tracer-test-{}", std::process::id());
    let docker = "d0c6e7".repeat(10) + "abcd";
    let containerd = "c0417a".repeat(10) + "1234";
    let in_pod = "e1f2a3".repeat(10) + "9876";
    let uid = "5f0c2d1e-7a3b-4c9d-8e6f-0a1b2c3d4e5f";
    let cases: [Case<'_>; 4] = [
        (
            format!("/{base}/system.slice/docker-{docker}.scope"),
            Some(&docker[..12]),
            None,
            None,
        ),
        (
            format!("/{base}/system.slice/cri-containerd-{containerd}.scope"),
            Some(&containerd[..12]),
            None,
            None,
        ),
        (
            format!(
                "/{base}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{in_pod}.scope",
                uid.replace('-', "_")
            ),
            Some(&in_pod[..12]),
            Some(uid),
            None,
        ),
        (
            format!("/{base}/system.slice/tracer-test-web.service"),
            None,
            None,
            Some("tracer-test-web.service"),
        ),
    ];
    let mut cgroups = Cgroups { made: Vec::new() };
    let (_server, port) = Peer::listen(HOST);
    let mut clients = Vec::new();
    for (path, ..) in &cases {
        let dir = root.join(path.trim_start_matches('/'));
        cgroups.make(&dir);
        let client = Peer::client(HOST, port);
        // Moved before tracer first reads it, as a runtime moves a process
        // before it runs the program.
        move_into(&dir, client.pid());
        clients.push(client);
    }

    let csv = CsvFile::new();
    let pids: Vec<String> = clients.iter().map(|c| c.pid().to_string()).collect();
    let mut args = vec!["--csv", csv.path.as_str()];
    for pid in &pids {
        args.extend(["--pid", pid.as_str()]);
    }
    let tracer = Tracer::start(&args);
    for client in &mut clients {
        client.connect_once().expect("connect");
    }
    thread::sleep(Duration::from_millis(1200));
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");

    for ((path, container, pod, unit), client) in cases.iter().zip(&clients) {
        let row = csv.last_of(client.pid());
        println!(
            "pid {}: container {:?} pod {:?} unit {:?} cgroup {:?}",
            client.pid(),
            row["container"],
            row["pod"],
            row["unit"],
            row["cgroup"]
        );
        assert_eq!(row["cgroup"], *path);
        assert_eq!(row["container"], container.unwrap_or_default());
        assert_eq!(row["pod"], pod.unwrap_or_default());
        assert_eq!(row["unit"], unit.unwrap_or_default());
        // The --events lines of its connects say the same.
        let pid = u64::from(client.pid());
        let connect = events
            .iter()
            .find(|e| e["event"] == "connect" && e["pid"] == pid)
            .unwrap_or_else(|| panic!("no connect event of pid {pid}"));
        assert_eq!(connect["cgroup"], path.as_str());
        assert_eq!(connect["container"].as_str(), *container);
    }
    drop(clients);
    drop(cgroups);
    assert!(
        !root.join(&base).exists(),
        "the test's cgroups were not removed"
    );
}

/// `--cgroup` filters in the kernel: a client in a pod's cgroup (two levels
/// below the one given, as a container is below its pod) is traced, one
/// outside is not, and the server is not either.
#[test]
fn cgroup_filters_in_the_kernel() {
    if !kernel_tests_enabled() {
        return;
    }
    let root = cgroup2_root();
    let base = format!("tracer-filter-{}", std::process::id());
    let pod = format!("/{base}/kubepods.slice/kubepods-pod1234.slice");
    let container = root
        .join(pod.trim_start_matches('/'))
        .join("cri-containerd-abc.scope");
    let mut cgroups = Cgroups { made: Vec::new() };
    cgroups.make(&container);
    let (server, port) = Peer::listen(HOST);
    let mut inside = Peer::client(HOST, port);
    let mut outside = Peer::client(HOST, port);
    move_into(&container, inside.pid());

    let csv = CsvFile::new();
    // As /proc/PID/cgroup shows it, relative to the v2 root.
    let tracer = Tracer::start(&["--csv", csv.path.as_str(), "--cgroup", &pod]);
    assert!(
        tracer.started().contains(&format!(
            "cgroup {}",
            root.join(pod.trim_start_matches('/')).display()
        )),
        "{}",
        tracer.started()
    );
    for _ in 0..3 {
        inside.connect_once().expect("connect");
        outside.connect_once().expect("connect");
    }
    thread::sleep(Duration::from_millis(1200));
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    let connects = |pid: u32| {
        events
            .iter()
            .filter(|e| e["event"] == "connect" && e["pid"] == u64::from(pid))
            .count()
    };
    println!(
        "--cgroup: connects inside {}, outside {}, server events {}",
        connects(inside.pid()),
        connects(outside.pid()),
        events
            .iter()
            .filter(|e| e["pid"] == u64::from(server.pid()))
            .count()
    );
    assert_eq!(connects(inside.pid()), 3);
    assert_eq!(connects(outside.pid()), 0);
    assert!(!events.iter().any(|e| e["pid"] == u64::from(server.pid())));
    assert_eq!(support::num(&csv.last_of(inside.pid()), "connects"), 3);
    assert!(csv.rows_of(outside.pid()).is_empty());
    drop((inside, outside, server));
    drop(cgroups);
}

/// A `--cgroup` that does not exist is an error naming it, before anything
/// is loaded.
#[test]
fn a_missing_cgroup_is_an_error() {
    if !kernel_tests_enabled() {
        return;
    }
    let out = std::process::Command::new(support::TRACER)
        .args([
            "--headless",
            "--duration",
            "1s",
            "--cgroup",
            "/no-such-cgroup-here",
        ])
        .output()
        .expect("run tracer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--cgroup /no-such-cgroup-here: no such cgroup"),
        "{stderr}"
    );
    assert!(!stderr.contains("tracing"), "{stderr}");
}
