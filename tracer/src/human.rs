//! Numbers, durations and endpoints written for people: the live view and the
//! findings use these so a value reads the same everywhere.

use std::time::Duration;

use crate::snapshot::Remote;

/// `950`, `12.3k`, `4.5M`: at most five characters for any count.
pub fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => scaled(n as f64 / 1e3, "k"),
        1_000_000..=999_999_999 => scaled(n as f64 / 1e6, "M"),
        _ => scaled(n as f64 / 1e9, "G"),
    }
}

fn scaled(value: f64, unit: &str) -> String {
    if value < 100.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

/// A per-second rate: `0`, `0.4`, `12`, `1.2k`.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0".to_owned()
    } else if per_sec < 9.95 {
        format!("{per_sec:.1}")
    } else {
        count(per_sec.round() as u64)
    }
}

/// A latency in microseconds: `850µs`, `1.2ms`, `35ms`, `1.5s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=9_999 => format!("{:.1}ms", us as f64 / 1e3),
        10_000..=999_999 => format!("{}ms", us / 1_000),
        _ => format!("{:.1}s", us as f64 / 1e6),
    }
}

/// An age or uptime: `45s`, `12m05s`, `3h07m`, `2d04h`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// `10.0.0.5:5432` for a server, `client 10.0.0.7` for a client.
pub fn remote(r: &Remote) -> String {
    match r {
        Remote::Server(addr) => addr.to_string(),
        Remote::Client(ip) => format!("client {ip}"),
        Remote::Other => "other remotes".to_owned(),
    }
}

/// `512 B`, `64 KiB`, `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if n < KIB {
        format!("{n} B")
    } else if n < MIB {
        if n.is_multiple_of(KIB) {
            format!("{} KiB", n / KIB)
        } else {
            format!("{:.1} KiB", n as f64 / KIB as f64)
        }
    } else {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    }
}

/// `3 sockets`, `1 socket`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stay_short() {
        assert_eq!(count(0), "0");
        assert_eq!(count(9_999), "9999");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(count(999_999), "1000k");
        assert_eq!(count(4_500_000), "4.5M");
    }

    #[test]
    fn rates() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(rate(0.44), "0.4");
        assert_eq!(rate(12.4), "12");
        assert_eq!(rate(15_000.0), "15.0k");
    }

    #[test]
    fn latencies() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(1_250), "1.2ms");
        assert_eq!(micros(35_000), "35ms");
        assert_eq!(micros(1_500_000), "1.5s");
    }

    #[test]
    fn ages() {
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(725)), "12m05s");
        assert_eq!(age(Duration::from_secs(3 * 3600 + 7 * 60)), "3h07m");
        assert_eq!(age(Duration::from_secs(2 * 86_400 + 4 * 3600)), "2d04h");
    }

    #[test]
    fn remotes() {
        let server = Remote::Server("10.0.0.5:5432".parse().unwrap());
        assert_eq!(remote(&server), "10.0.0.5:5432");
        let client = Remote::Client("10.0.0.7".parse().unwrap());
        assert_eq!(remote(&client), "client 10.0.0.7");
        assert_eq!(remote(&Remote::Other), "other remotes");
    }
}
