//! Which container, pod or systemd unit a process runs in, from its
//! `/proc/<pid>/cgroup`. Parsing is pure ([`parse`]); [`read`] reads the file.
//!
//! The runtimes name their cgroups by pattern, each holding the container's
//! 64-hex id: docker (`docker-<id>.scope` under systemd, `/docker/<id>`
//! under cgroupfs), containerd (`cri-containerd-<id>.scope`), CRI-O
//! (`crio-<id>.scope`, with crun a `container` child below it), podman
//! (`libpod-<id>.scope`), and the cgroupfs drivers of Kubernetes and docker
//! (a bare `<id>` directory). Kubernetes puts containers in a pod's cgroup:
//! `kubepods-<qos>-pod<uid>.slice` (systemd driver, `-` of the uid written
//! `_`) or `/kubepods/<qos>/pod<uid>` (cgroupfs driver). Anything else that
//! systemd manages is a unit (`nginx.service`, `session-3.scope`).
//!
//! On cgroup v2 the file has one line, `0::/path`; on a hybrid host (v2
//! mounted beside the v1 controllers, as at `/sys/fs/cgroup/unified`) it has
//! a line per v1 hierarchy as well, and on a v1-only host only those. Paths
//! are relative to tracer's cgroup namespace: inside a container they may
//! start with `/..`, which changes nothing here.

/// Where a process runs, as its cgroup says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup v2 path (the `0::` line); where that is the root while
    /// systemd's v1 hierarchy (`name=systemd`) says more (a v1-only host, a
    /// cgroupfs-driven runtime on a hybrid host), that one's.
    pub path: String,
    /// The container's full id (64 hex digits), when a runtime's pattern
    /// names one.
    pub container: Option<String>,
    /// The Kubernetes pod's uid, when the process is in a pod's cgroup.
    pub pod: Option<String>,
    /// The systemd unit, when the process is in no container.
    pub unit: Option<String>,
}

/// Digits of a container id shown, as `docker ps` shows them.
pub const SHORT_ID: usize = 12;

impl Cgroup {
    /// The container id as `docker ps` and `crictl ps` show it: 12 hex digits.
    pub fn short_container(&self) -> Option<&str> {
        self.container
            .as_deref()
            .map(|id| &id[..SHORT_ID.min(id.len())])
    }
}

/// The cgroup of `pid`; `None` when the process is gone or its file cannot be read.
pub fn read(pid: u32) -> Option<Cgroup> {
    parse(&super::process::read_text(format!("/proc/{pid}/cgroup"))?)
}

/// Parses the text of a `/proc/<pid>/cgroup` file; `None` when it has no
/// line of the form `ID:CONTROLLERS:PATH`.
pub fn parse(text: &str) -> Option<Cgroup> {
    // (hierarchy id, controllers, path) of every well-formed line.
    let lines: Vec<(&str, &str, &str)> = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with('/').then_some((id, controllers, path))
        })
        .collect();
    let v2 = lines
        .iter()
        .find(|(id, controllers, _)| *id == "0" && controllers.is_empty());
    let systemd = lines
        .iter()
        .find(|(_, controllers, _)| *controllers == "name=systemd");
    // The path shown: v2's, unless it is the root and systemd's v1
    // hierarchy says more; on a v1 host without systemd, the first line's.
    let path = [v2, systemd]
        .into_iter()
        .flatten()
        .map(|&(_, _, path)| path)
        .find(|path| *path != "/")
        .or(v2.or(systemd).or(lines.first()).map(|&(_, _, path)| path))?;
    // Identity: from the path shown, else from any other hierarchy (a
    // cgroupfs runtime on a hybrid host names its containers only in v1).
    let paths = std::iter::once(path).chain(lines.iter().map(|&(_, _, p)| p));
    let mut container = None;
    let mut pod = None;
    for p in paths {
        container = container.or_else(|| container_of(p));
        pod = pod.or_else(|| pod_of(p));
    }
    let unit = container.is_none().then(|| unit_of(path)).flatten();
    Some(Cgroup {
        path: path.to_owned(),
        container,
        pod,
        unit,
    })
}

/// The container id a path names: its deepest component that a runtime's
/// pattern matches.
fn container_of(path: &str) -> Option<String> {
    const PREFIXES: [&str; 5] = ["docker-", "cri-containerd-", "crio-", "libpod-", ""];
    path.rsplit('/').find_map(|component| {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        PREFIXES
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix).filter(|id| is_container_id(id)))
            .map(str::to_owned)
    })
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pod uid a path names: `kubepods[-<qos>]-pod<uid>.slice` (its `_`
/// written back as `-`) or `pod<uid>` below a `kubepods` directory.
fn pod_of(path: &str) -> Option<String> {
    let mut in_kubepods = false;
    for component in path.split('/') {
        let uid = if let Some(slice) = component
            .strip_prefix("kubepods")
            .and_then(|rest| rest.strip_suffix(".slice"))
        {
            slice.rsplit_once("-pod").map(|(_, uid)| uid)
        } else if in_kubepods {
            component.strip_prefix("pod")
        } else {
            None
        };
        in_kubepods |= component == "kubepods" || component.starts_with("kubepods-");
        if let Some(uid) = uid.filter(|uid| is_pod_uid(uid)) {
            return Some(uid.replace('_', "-"));
        }
    }
    None
}

/// A uid (`8-4-4-4-12` hex) or a static pod's hash (32 hex).
fn is_pod_uid(uid: &str) -> bool {
    (32..=36).contains(&uid.len())
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

/// The systemd unit a path names: its deepest `.service` or `.scope`.
fn unit_of(path: &str) -> Option<String> {
    path.rsplit('/')
        .find(|c| {
            let stem = c
                .strip_suffix(".service")
                .or_else(|| c.strip_suffix(".scope"));
            stem.is_some_and(|stem| !stem.is_empty())
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1d9b2a7c3e8d6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
    const UID: &str = "0b8f3c1e-5a7d-4e2b-9c6f-1d2e3f4a5b6c";

    fn parsed(text: &str) -> Cgroup {
        parse(text).unwrap_or_else(|| panic!("no cgroup in {text:?}"))
    }

    fn container(text: &str) -> Option<String> {
        parsed(text).container
    }

    #[test]
    fn containers_of_every_runtime() {
        for line in [
            // docker, systemd driver (v2)
            format!("0::/system.slice/docker-{ID}.scope"),
            // docker, cgroupfs driver
            format!("0::/docker/{ID}"),
            // containerd under Kubernetes, systemd driver
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
                UID.replace('-', "_")
            ),
            // CRI-O, with crun's `container` child
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{ID}.scope/container",
                UID.replace('-', "_")
            ),
            // podman, rootful and rootless
            format!("0::/machine.slice/libpod-{ID}.scope"),
            format!(
                "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            ),
            // Kubernetes, cgroupfs driver
            format!("0::/kubepods/burstable/pod{UID}/{ID}"),
            // docker in docker / a CI job runner
            format!("0::/actions_job/{ID}"),
        ] {
            let cg = parsed(&line);
            assert_eq!(cg.container.as_deref(), Some(ID), "{line}");
            assert_eq!(cg.short_container(), Some(&ID[..12]), "{line}");
            assert_eq!(cg.unit, None, "{line}");
            assert_eq!(cg.path, line[3..], "{line}");
        }
    }

    #[test]
    fn pods() {
        let systemd = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
            UID.replace('-', "_")
        );
        assert_eq!(parsed(&systemd).pod.as_deref(), Some(UID));
        // Guaranteed QoS: no QoS slice.
        let guaranteed = format!(
            "0::/kubepods.slice/kubepods-pod{}.slice",
            UID.replace('-', "_")
        );
        let cg = parsed(&guaranteed);
        assert_eq!((cg.pod.as_deref(), cg.container), (Some(UID), None));
        assert_eq!(cg.unit, None, "a slice is not a unit a process runs in");
        let cgroupfs = format!("0::/kubepods/besteffort/pod{UID}/{ID}");
        assert_eq!(parsed(&cgroupfs).pod.as_deref(), Some(UID));
        // A static pod's uid is a hash.
        let hash = "6f1d9b2a7c3e8d6f0a1b2c3d4e5f6071";
        assert_eq!(
            parsed(&format!("0::/kubepods/pod{hash}/{ID}"))
                .pod
                .as_deref(),
            Some(hash)
        );
        assert_eq!(parsed(&format!("0::/docker/{ID}")).pod, None);
        assert_eq!(parsed("0::/podman.service").pod, None);
        assert_eq!(
            parsed(&format!("0::/srv/pod{UID}")).pod,
            None,
            "not under kubepods"
        );
    }

    #[test]
    fn units() {
        for (line, unit) in [
            ("0::/system.slice/nginx.service", "nginx.service"),
            ("0::/init.scope", "init.scope"),
            (
                "0::/user.slice/user-1000.slice/session-3.scope",
                "session-3.scope",
            ),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-foot-123.scope",
                "app-foot-123.scope",
            ),
            // A service that delegates sub-cgroups (systemd-nspawn, a runner).
            (
                "0::/system.slice/containerd.service/sub/leaf",
                "containerd.service",
            ),
        ] {
            let cg = parsed(line);
            assert_eq!(cg.unit.as_deref(), Some(unit), "{line}");
            assert_eq!((cg.container, cg.pod), (None, None), "{line}");
        }
        assert_eq!(parsed("0::/").unit, None);
        assert_eq!(parsed("0::/system.slice").unit, None);
        assert_eq!(parsed("0::/.scope").unit, None);
        // conmon watches a podman container from a scope of its own.
        let conmon = parsed(&format!("0::/machine.slice/libpod-conmon-{ID}.scope"));
        assert_eq!(conmon.container, None);
        assert_eq!(conmon.unit, Some(format!("libpod-conmon-{ID}.scope")));
    }

    #[test]
    fn not_container_ids() {
        for line in [
            "0::/docker/abc",
            &format!("0::/docker/{}", &ID[..63]),
            &format!("0::/docker/{}", ID.replace('4', "g")),
            &format!("0::/system.slice/docker-{ID}x.scope"),
            &format!("0::/system.slice/rkt-{ID}.scope"),
        ] {
            assert_eq!(container(line), None, "{line}");
        }
        // Upper-case hex is hex.
        assert!(container(&format!("0::/docker/{}", ID.to_uppercase())).is_some());
    }

    #[test]
    fn hybrid_hosts() {
        // systemd manages both: the v2 line names the unit.
        let hybrid = format!(
            "12:pids:/system.slice/docker-{ID}.scope\n\
             4:memory:/system.slice/docker-{ID}.scope\n\
             1:name=systemd:/system.slice/docker-{ID}.scope\n\
             0::/system.slice/docker-{ID}.scope\n"
        );
        let cg = parsed(&hybrid);
        assert_eq!(cg.path, format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(cg.container.as_deref(), Some(ID));
        // docker's cgroupfs driver on a hybrid host: v2 says nothing.
        let cgroupfs = format!(
            "9:name=systemd:/docker/{ID}\n8:pids:/docker/{ID}\n4:memory:/docker/{ID}\n0::/\n"
        );
        let cg = parsed(&cgroupfs);
        assert_eq!(cg.path, format!("/docker/{ID}"));
        assert_eq!(cg.container.as_deref(), Some(ID));
        // Only a controller names the container.
        let controller = format!("4:memory:/docker/{ID}\n1:name=systemd:/\n0::/\n");
        let cg = parsed(&controller);
        assert_eq!(cg.path, "/");
        assert_eq!(cg.container.as_deref(), Some(ID));
        // Everything at the root but a controller, as on this development VM.
        let root = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/73012303554f\n0::/\n";
        let cg = parsed(root);
        assert_eq!((cg.path.as_str(), cg.container, cg.unit), ("/", None, None));
        // v1 without systemd.
        assert_eq!(
            parsed("3:cpu:/batch/job7\n2:memory:/batch\n").path,
            "/batch/job7"
        );
        // v1 only.
        let v1 =
            "11:cpu,cpuacct:/system.slice/ssh.service\n1:name=systemd:/system.slice/ssh.service\n";
        let cg = parsed(v1);
        assert_eq!(cg.unit.as_deref(), Some("ssh.service"));
    }

    #[test]
    fn inside_a_cgroup_namespace() {
        let cg = parsed(&format!(
            "0::/../../kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope",
            UID.replace('-', "_")
        ));
        assert_eq!(cg.container.as_deref(), Some(ID));
        assert_eq!(cg.pod.as_deref(), Some(UID));
    }

    #[test]
    fn malformed() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse("0::relative"), None);
        assert_eq!(parse("0:"), None);
        // A path with a colon is still one path.
        assert_eq!(parsed("0::/a:b").path, "/a:b");
    }

    #[test]
    fn own_process() {
        let me = read(std::process::id()).expect("own cgroup");
        assert!(me.path.starts_with('/'), "{me:?}");
        assert_eq!(read(u32::MAX - 1), None);
    }
}
