//! A network namespace's TCP extension counters (`/proc/<pid>/net/netstat`,
//! the `TcpExt:` lines `nstat` reads): here, `ListenOverflows`, the SYNs and
//! handshakes dropped because a listener's accept queue was full.

use std::path::Path;

/// `ListenOverflows` of the namespace `pid` lives in, or `None` when it
/// cannot be read (the process is gone).
pub fn listen_overflows(pid: u32) -> Option<u64> {
    let text = super::process::read_text(Path::new(&format!("/proc/{pid}/net/netstat")))?;
    tcp_ext(&text, "ListenOverflows")
}

/// The `TcpExt` counter `name` in the text of a netstat file: a line of names
/// followed by a line of values.
fn tcp_ext(text: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?.split_whitespace().skip(1);
    let values = lines.next()?.split_whitespace().skip(1);
    names
        .zip(values)
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_counter_by_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 0 12 14\n\
                    IpExt: InNoRoutes\nIpExt: 3\n";
        assert_eq!(tcp_ext(text, "ListenOverflows"), Some(12));
        assert_eq!(tcp_ext(text, "ListenDrops"), Some(14));
        assert_eq!(tcp_ext(text, "Missing"), None);
        assert_eq!(
            tcp_ext("TcpExt: ListenOverflows\n", "ListenOverflows"),
            None
        );
        assert_eq!(tcp_ext("", "ListenOverflows"), None);
    }

    #[test]
    fn reads_this_namespace() {
        assert!(listen_overflows(std::process::id()).is_some());
    }
}
