//! The results as tables, and the overhead targets checked against them.

use std::fmt::Write as _;

use crate::{
    measure::{KernelProfile, TableCost},
    results::{BystanderResults, Results, StreamResults, SubjectResult, Target},
    stats::Spread,
    workload::Mode,
};

/// Other load above which a pair counts as disturbed.
pub const NOISY_CORES: f64 = 0.1;

/// Renders every table. Pure: the same results give the same text.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    let m = &results.machine;
    let s = &results.settings;
    let _ = writeln!(
        out,
        "kernel {}, {} CPUs, load average {} at start, {} at end; client on cpu {}, server on \
         cpu {}, bystander on cpu {}",
        m.kernel,
        m.cpus,
        m.loadavg_at_start,
        m.loadavg_at_end,
        s.client_cpu,
        s.server_cpu,
        s.bystander_cpu
    );
    let _ = writeln!(
        out,
        "{} pairs of {}s per subject and workload; tracer {}",
        s.pairs, s.seconds, s.tracer_args
    );
    if let Some(bystander) = &results.bystander {
        render_bystander(bystander, &mut out);
    }
    if let Some(stream) = &results.stream {
        render_stream(stream, &mut out);
    }

    if !results.churn.is_empty() {
        render_churn(results, &mut out);
    }

    // bpftrace's programs are only known by id; its totals are in the cost table.
    for mode in &results.churn {
        for r in &mode.subjects {
            let Some(kernel) = &r.kernel else { continue };
            // noop-hooks' programs are all alike: their total is in the cost table too.
            if r.subject == "noop_hooks"
                || kernel.programs.iter().all(|p| p.name.starts_with("prog "))
            {
                continue;
            }
            let _ = writeln!(
                out,
                "\nKernel time per program: {}, {} mode ({} connections)",
                r.label,
                mode.mode.name(),
                kernel.churn.connections
            );
            let _ = writeln!(
                out,
                "  {:<24}{:>12}{:>10}{:>10}{:>12}",
                "program", "runs", "runs/conn", "ns/run", "ns/conn"
            );
            let connections = kernel.churn.connections.max(1) as f64;
            for p in &kernel.programs {
                let _ = writeln!(
                    out,
                    "  {:<24}{:>12}{:>10.2}{:>10}{:>12.0}",
                    p.name,
                    p.run_cnt,
                    p.run_cnt as f64 / connections,
                    if p.run_cnt > 0 {
                        format!("{:.0}", p.run_time_ns as f64 / p.run_cnt as f64)
                    } else {
                        "-".into()
                    },
                    p.run_time_ns as f64 / connections
                );
            }
            let _ = writeln!(
                out,
                "  {:<24}{:>12}{:>10.2}{:>10}{:>12.0}",
                "all",
                kernel.runs,
                kernel.runs as f64 / connections,
                opt(kernel.ns_per_run(), 0),
                kernel.run_time_ns as f64 / connections
            );
        }
    }

    if let Some(first) = &results.first_event {
        let _ = writeln!(
            out,
            "\nStart-up under churn (tracer, all processes): attached after {}; first event after {}",
            seconds_list(&first.attach_s),
            seconds_list(&first.first_event_s)
        );
    }
    if let Some(hold) = &results.hold {
        let _ = writeln!(
            out,
            "Memory: tracer's peak RSS with {} live connections: {:.1} MiB{}",
            hold.connections,
            hold.peak_rss_kib as f64 / 1024.0,
            hold.summary.map_or(String::new(), |s| format!(
                " ({} events read, {} dropped)",
                s.read, s.dropped
            ))
        );
        let per_sample: Vec<String> = hold
            .tables
            .iter()
            .map(|t| {
                format!(
                    "{} {} ({} samples)",
                    t.subject,
                    t.ms_per_sample()
                        .map_or("-".to_owned(), |ms| format!("{ms:.0} ms")),
                    t.samples
                )
            })
            .collect();
        if !per_sample.is_empty() {
            let _ = writeln!(
                out,
                "Socket tables with {} live connections, CPU per sample: {}",
                hold.connections,
                per_sample.join(", ")
            );
        }
    }

    let bystanders = results.bystander.iter().flat_map(|b| &b.subjects);
    let streams = results.stream.iter().flat_map(|s| &s.subjects);
    let failed: usize = results
        .churn
        .iter()
        .flat_map(|m| &m.subjects)
        .map(|r| r.failures.len())
        .chain(bystanders.clone().map(|r| r.failures.len()))
        .chain(streams.clone().map(|r| r.failures.len()))
        .sum();
    if failed > 0 {
        let _ = writeln!(
            out,
            "\nwarning: {failed} sample(s) failed and are left out (see `failures` in the JSON)"
        );
    }
    let churn_pairs = results
        .churn
        .iter()
        .flat_map(|m| &m.subjects)
        .flat_map(|r| &r.pairs);
    let bystander_pairs = bystanders.flat_map(|r| &r.pairs);
    let stream_pairs = streams.flat_map(|r| &r.pairs);
    let noisy = churn_pairs
        .clone()
        .map(|p| p.other_load_cores)
        .chain(bystander_pairs.clone().map(|p| p.other_load_cores))
        .chain(stream_pairs.clone().map(|p| p.other_load_cores))
        .filter(|&cores| cores > NOISY_CORES)
        .count();
    let drops: u64 = results
        .churn
        .iter()
        .flat_map(|m| &m.subjects)
        .map(|r| r.listen_drops)
        .sum();
    if drops > 0 {
        let _ = writeln!(
            out,
            "\nwarning: the churn's listener dropped {drops} SYN(s); each stalls a connect for \
             a SYN retransmit timeout, so the affected samples are too slow"
        );
    }
    let traced_by_others = churn_pairs
        .map(|p| p.other_tracers.is_empty())
        .chain(bystander_pairs.map(|p| p.other_tracers.is_empty()))
        .chain(stream_pairs.map(|p| p.other_tracers.is_empty()))
        .filter(|&alone| !alone)
        .count();
    if traced_by_others > 0 {
        let _ = writeln!(
            out,
            "\nwarning: in {traced_by_others} pair(s) other processes held tracing BPF programs \
             (see `other_tracers` in the JSON): their \"untraced\" samples were traced too"
        );
    }
    if noisy > 0 {
        let _ = writeln!(
            out,
            "\nwarning: {noisy} pair(s) ran while other processes used more than {NOISY_CORES} \
             cores; the ratios are less trustworthy: run again on a quiet machine"
        );
    }

    render_ratios(results, &mut out);

    let _ = writeln!(out, "\nOverhead targets");
    for t in &results.targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "  {:<52} {:<10} {:<26} {}",
            t.what, t.target, t.measured, verdict
        );
    }
    if let Some(control) = ratio(results, "control") {
        let _ = writeln!(
            out,
            "  (noise floor: untraced vs untraced in reset mode gives a ratio of {:.3}, IQR \
             {:.3}-{:.3})",
            control.median, control.p25, control.p75
        );
    }
    if let Some(noop) = ratio(results, "noop_hooks") {
        let _ = writeln!(
            out,
            "  (hook floor: programs that return at once on the same hooks give {:.3}, IQR \
             {:.3}-{:.3}; no program on these hooks can do better)",
            noop.median, noop.p25, noop.p75
        );
    }
    if let Some(control) = bystander_ratio(results, "control") {
        let _ = writeln!(
            out,
            "  (bystander noise floor: untraced vs untraced gives {:.3}, IQR {:.3}-{:.3})",
            control.median, control.p25, control.p75
        );
    }
    if let Some(control) = stream_ratio(results, "control") {
        let _ = writeln!(
            out,
            "  (stream noise floor: untraced vs untraced gives {:.3}, IQR {:.3}-{:.3})",
            control.median, control.p25, control.p75
        );
    }
    if let Some(noop) = stream_ratio(results, "noop_hooks") {
        let _ = writeln!(
            out,
            "  (stream hook floor: no-op programs on the same hooks give {:.3}, IQR {:.3}-{:.3})",
            noop.median, noop.p25, noop.p75
        );
    }
    out
}

/// The stream's tables: bytes/s and the ratio per subject, then the kernel
/// time of each program that ran during its kernel-time sample.
fn render_stream(stream: &StreamResults, out: &mut String) {
    let _ = writeln!(
        out,
        "\nStream: one bulk TCP transfer over loopback, sender on cpu {}, receiver on cpu {} \
         (MB/s = 10^6 bytes/s, medians; ratio = traced/untraced per pair; BPF ns/MB = kernel \
         time of the subject's programs per MB, from one sample with BPF statistics on; \
         events = what the subject emitted in its traced samples; other load = cores used by \
         other processes, median / max)",
        stream.sender_cpu, stream.receiver_cpu
    );
    let _ = writeln!(
        out,
        "{:<26}{:>9}{:>9}{:>8}  {:<13}  {:<11}{:>10}{:>9}{:>8}  {:<11}",
        "subject",
        "untraced",
        "traced",
        "ratio",
        "ratio IQR",
        "ratio range",
        "BPF ns/MB",
        "runs/MB",
        "events",
        "other load"
    );
    let mb = |s: Option<Spread>| s.map_or("-".into(), |s| format!("{:.0}", s.median / 1e6));
    for r in &stream.subjects {
        let kernel = r.kernel.as_ref();
        let _ = writeln!(
            out,
            "{:<26}{:>9}{:>9}{:>8}  {:<13}  {:<11}{:>10}{:>9}{:>8}  {:<11}",
            r.label,
            mb(r.untraced_rate),
            mb(r.traced_rate),
            r.ratio.map_or("-".into(), |s| format!("{:.3}", s.median)),
            r.ratio
                .map_or("-".into(), |s| format!("{:.3}-{:.3}", s.p25, s.p75)),
            r.ratio
                .map_or("-".into(), |s| format!("{:.2}-{:.2}", s.min, s.max)),
            opt(kernel.and_then(|k| k.ns_per_mb()), 0),
            opt(kernel.and_then(|k| k.runs_per_mb()), 1),
            r.events.map_or("-".into(), |e| e.to_string()),
            r.other_load_cores
                .map_or("-".into(), |s| format!("{:.2} / {:.2}", s.median, s.max)),
        );
    }
    for r in &stream.subjects {
        let Some(kernel) = &r.kernel else { continue };
        let ran: Vec<_> = kernel.programs.iter().filter(|p| p.run_cnt > 0).collect();
        if ran.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\nKernel time per program: {}, stream ({:.0} MB)",
            r.label,
            kernel.stream.bytes as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "  {:<24}{:>12}{:>10}{:>10}{:>12}",
            "program", "runs", "runs/MB", "ns/run", "ns/MB"
        );
        let mbs = (kernel.stream.bytes as f64 / 1e6).max(1e-9);
        for p in ran {
            let _ = writeln!(
                out,
                "  {:<24}{:>12}{:>10.1}{:>10.0}{:>12.0}",
                p.name,
                p.run_cnt,
                p.run_cnt as f64 / mbs,
                p.run_time_ns as f64 / p.run_cnt as f64,
                p.run_time_ns as f64 / mbs
            );
        }
    }
}

/// The churn's tables: throughput and cost per mode and subject.
fn render_churn(results: &Results, out: &mut String) {
    let _ = writeln!(
        out,
        "\nThroughput (connections/s, medians; ratio = traced/untraced per pair; +us/conn = \
         time tracing added to a connection; other load = cores used by other processes, \
         median / max)"
    );
    let _ = writeln!(
        out,
        "{:<7}{:<25}{:>10}{:>10}{:>8}  {:<13}  {:<11}{:>9}  {:<11}",
        "mode",
        "subject",
        "untraced",
        "traced",
        "ratio",
        "ratio IQR",
        "ratio range",
        "+us/conn",
        "other load"
    );
    for mode in &results.churn {
        for r in &mode.subjects {
            let _ = writeln!(
                out,
                "{:<7}{:<25}{:>10}{:>10}{:>8}  {:<13}  {:<11}{:>9}  {:<11}",
                mode.mode.name(),
                r.label,
                r.untraced_rate.map_or("-".into(), |s| thousands(s.median)),
                r.traced_rate.map_or("-".into(), |s| thousands(s.median)),
                r.ratio.map_or("-".into(), |s| format!("{:.3}", s.median)),
                r.ratio
                    .map_or("-".into(), |s| format!("{:.3}-{:.3}", s.p25, s.p75)),
                r.ratio
                    .map_or("-".into(), |s| format!("{:.2}-{:.2}", s.min, s.max)),
                opt(r.added_us_per_connection.map(|s| s.median), 2),
                r.other_load_cores
                    .map_or("-".into(), |s| format!("{:.2} / {:.2}", s.median, s.max)),
            );
        }
    }

    let _ = writeln!(
        out,
        "\nCost (traced samples; kernel time from one sample with BPF statistics on)"
    );
    let _ = writeln!(
        out,
        "{:<7}{:<25}{:>8}{:>11}{:>9}{:>10}{:>9}{:>11}{:>11}{:>9}{:>9}{:>9}",
        "mode",
        "subject",
        "ev/conn",
        "emitted",
        "dropped",
        "BPF ns/",
        "BPF ns/",
        "user CPU s",
        "core %/10k",
        "wakeups",
        "peak RSS",
        "attach"
    );
    let _ = writeln!(
        out,
        "{:<7}{:<25}{:>8}{:>11}{:>9}{:>10}{:>9}{:>11}{:>11}{:>9}{:>9}{:>9}",
        "", "", "", "", "", "conn", "event", "/M events", "conn/s", "/1k ev", "MiB", "s"
    );
    for mode in &results.churn {
        for r in &mode.subjects {
            let (emitted, dropped) = emitted_dropped(r);
            let _ = writeln!(
                out,
                "{:<7}{:<25}{:>8}{:>11}{:>9}{:>10}{:>9}{:>11}{:>11}{:>9}{:>9}{:>9}",
                mode.mode.name(),
                r.label,
                opt(r.events_per_connection, 2),
                emitted,
                dropped,
                opt(
                    r.kernel.as_ref().and_then(KernelProfile::ns_per_connection),
                    0
                ),
                opt(r.kernel.as_ref().and_then(KernelProfile::ns_per_event), 0),
                opt(r.user_cpu_s_per_million_events, 2),
                opt(r.core_percent_per_10k_connections_per_s, 1),
                opt(r.wakeups_per_1k_events, 1),
                opt(r.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
                opt(r.attach_s.map(|s| s.median), 3),
            );
        }
    }
}

/// The bystander's table: syscalls/s and the ratio per subject.
fn render_bystander(bystander: &BystanderResults, out: &mut String) {
    let _ = writeln!(
        out,
        "\nBystander: a network-free process (1-byte pipe write + read) alone on cpu {}, the \
         churn idle (syscalls/s, medians; ratio = traced/untraced per pair; +ns/call = time \
         tracing added to each syscall; other load = cores used by other processes, median / \
         max)",
        bystander.cpu
    );
    let _ = writeln!(
        out,
        "{:<28}{:>11}{:>11}{:>8}  {:<13}  {:<11}{:>9}  {:<11}",
        "subject",
        "untraced",
        "traced",
        "ratio",
        "ratio IQR",
        "ratio range",
        "+ns/call",
        "other load"
    );
    for r in &bystander.subjects {
        let _ = writeln!(
            out,
            "{:<28}{:>11}{:>11}{:>8}  {:<13}  {:<11}{:>9}  {:<11}",
            r.label,
            r.untraced_rate.map_or("-".into(), |s| thousands(s.median)),
            r.traced_rate.map_or("-".into(), |s| thousands(s.median)),
            r.ratio.map_or("-".into(), |s| format!("{:.3}", s.median)),
            r.ratio
                .map_or("-".into(), |s| format!("{:.3}-{:.3}", s.p25, s.p75)),
            r.ratio
                .map_or("-".into(), |s| format!("{:.2}-{:.2}", s.min, s.max)),
            opt(r.added_ns_per_syscall.map(|s| s.median), 1),
            r.other_load_cores
                .map_or("-".into(), |s| format!("{:.2} / {:.2}", s.median, s.max)),
        );
    }
}

/// Every subject's ratios side by side: the churn in each mode, and the
/// bystander.
fn render_ratios(results: &Results, out: &mut String) {
    // Subjects in the order they were measured, each once.
    let mut subjects: Vec<(&str, &str)> = Vec::new();
    let bystander = results.bystander.iter().flat_map(|b| &b.subjects);
    let stream = results.stream.iter().flat_map(|s| &s.subjects);
    let churn = results.churn.iter().flat_map(|m| &m.subjects);
    for (key, label) in bystander
        .map(|r| (r.subject, r.label))
        .chain(stream.map(|r| (r.subject, r.label)))
        .chain(churn.map(|r| (r.subject, r.label)))
    {
        if !subjects.iter().any(|&(k, _)| k == key) {
            subjects.push((key, label));
        }
    }
    if subjects.is_empty() {
        return;
    }
    let mut columns: Vec<String> = results
        .churn
        .iter()
        .map(|m| format!("{} churn", m.mode.name()))
        .collect();
    if results.bystander.is_some() {
        columns.push("bystander".into());
    }
    if results.stream.is_some() {
        columns.push("stream".into());
    }
    let _ = writeln!(out, "\nRatios, traced/untraced (median and IQR)");
    let mut header = format!("{:<28}", "subject");
    for column in &columns {
        let _ = write!(header, "{column:<22}");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    let cell = |ratio: Option<Spread>| {
        ratio.map_or("-".into(), |s| {
            format!("{:.3} ({:.3}-{:.3})", s.median, s.p25, s.p75)
        })
    };
    for (key, label) in subjects {
        let mut row = format!("{label:<28}");
        for mode in &results.churn {
            let ratio = mode
                .subjects
                .iter()
                .find(|r| r.subject == key)
                .and_then(|r| r.ratio);
            let _ = write!(row, "{:<22}", cell(ratio));
        }
        if results.bystander.is_some() {
            let _ = write!(row, "{:<22}", cell(bystander_ratio(results, key)));
        }
        if results.stream.is_some() {
            let _ = write!(row, "{:<22}", cell(stream_ratio(results, key)));
        }
        let _ = writeln!(out, "{}", row.trim_end());
    }
}

fn emitted_dropped(r: &SubjectResult) -> (String, String) {
    match (r.totals.tracer, r.totals.counted) {
        (Some(t), _) => (t.submitted.to_string(), t.dropped.to_string()),
        (None, Some(counted)) => (counted.to_string(), "-".into()),
        (None, None) => ("-".into(), "-".into()),
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

pub fn seconds_list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.3}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `31234.6` → `31,235`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

fn subject<'a>(results: &'a Results, mode: Mode, key: &str) -> Option<&'a SubjectResult> {
    results
        .churn
        .iter()
        .filter(|m| m.mode == mode)
        .flat_map(|m| &m.subjects)
        .find(|r| r.subject == key)
}

fn ratio(results: &Results, key: &str) -> Option<Spread> {
    subject(results, Mode::Reset, key)?.ratio
}

fn bystander_ratio(results: &Results, key: &str) -> Option<Spread> {
    results
        .bystander
        .as_ref()?
        .subjects
        .iter()
        .find(|r| r.subject == key)?
        .ratio
}

fn stream_ratio(results: &Results, key: &str) -> Option<Spread> {
    results
        .stream
        .as_ref()?
        .subjects
        .iter()
        .find(|r| r.subject == key)?
        .ratio
}

/// The overhead targets, each with what this run measured.
pub fn targets(results: &Results) -> Vec<Target> {
    let target = |what: &str, target: &str, measured: Option<String>, met: Option<bool>| Target {
        what: what.into(),
        target: target.into(),
        measured: measured.unwrap_or_else(|| "-".into()),
        met,
    };
    let all = ratio(results, "tracer_all");
    let pid = ratio(results, "tracer_pid_other");
    let peer = ratio(results, "bpftrace_count");
    let tracer_all: Vec<&SubjectResult> = results
        .churn
        .iter()
        .flat_map(|m| &m.subjects)
        .filter(|r| r.subject == "tracer_all")
        .collect();
    let dropped: Option<u64> = (!tracer_all.is_empty()).then(|| {
        tracer_all
            .iter()
            .map(|r| {
                r.totals.tracer.map_or(0, |t| t.dropped)
                    + r.kernel.as_ref().and_then(|k| k.dropped).unwrap_or(0)
            })
            .sum()
    });
    let emitted: u64 = tracer_all
        .iter()
        .map(|r| {
            r.totals.tracer.map_or(0, |t| t.submitted)
                + r.kernel.as_ref().and_then(|k| k.emitted).unwrap_or(0)
        })
        .sum();
    let user = subject(results, Mode::Reset, "tracer_all")
        .and_then(|r| r.core_percent_per_10k_connections_per_s);
    let bystander_all = bystander_ratio(results, "tracer_all");
    let bystander_pid = bystander_ratio(results, "tracer_pid_other");
    let stream_all = stream_ratio(results, "tracer_all");
    let stream_pid = stream_ratio(results, "tracer_pid_other");
    let hold = results.hold.as_ref();
    // sock_diag's CPU per sample over /proc text's, at 100k connections.
    let tables = hold.filter(|h| h.connections >= 100_000).and_then(|h| {
        let ms = |key: &str| {
            h.tables
                .iter()
                .find(|t| t.subject == key)
                .and_then(TableCost::ms_per_sample)
        };
        Some((ms("tracer_all")?, ms("tracer_proc_tables")?))
    });
    let first = results
        .first_event
        .as_ref()
        .and_then(|f| f.first_event)
        .map(|s| s.max);
    vec![
        target(
            "reset churn, all processes traced (ratio)",
            ">= 0.97",
            all.map(|s| format!("{:.3}", s.median)),
            all.map(|s| s.median >= 0.97),
        ),
        target(
            "reset churn, all processes vs bpftrace peer (ratio)",
            "> peer",
            all.zip(peer)
                .map(|(a, p)| format!("{:.3} vs {:.3}", a.median, p.median)),
            all.zip(peer).map(|(a, p)| a.median > p.median),
        ),
        target(
            "reset churn, --pid of an unrelated process (ratio)",
            ">= 0.99",
            pid.map(|s| format!("{:.3}", s.median)),
            pid.map(|s| s.median >= 0.99),
        ),
        target(
            "bystander, all processes traced (ratio)",
            ">= 0.99",
            bystander_all.map(|s| format!("{:.3}", s.median)),
            bystander_all.map(|s| s.median >= 0.99),
        ),
        target(
            "bystander, --pid of an unrelated process (ratio)",
            ">= 0.99",
            bystander_pid.map(|s| format!("{:.3}", s.median)),
            bystander_pid.map(|s| s.median >= 0.99),
        ),
        target(
            "stream, all processes traced (ratio)",
            ">= 0.98",
            stream_all.map(|s| format!("{:.3}", s.median)),
            stream_all.map(|s| s.median >= 0.98),
        ),
        target(
            "stream, --pid of an unrelated process (ratio)",
            ">= 0.98",
            stream_pid.map(|s| format!("{:.3}", s.median)),
            stream_pid.map(|s| s.median >= 0.98),
        ),
        target(
            "dropped events at max churn, default ring buffer",
            "0",
            dropped.map(|d| format!("{d} of {emitted}")),
            dropped.map(|d| d == 0),
        ),
        target(
            "userspace, % of one core per 10k connections/s",
            "<= 5",
            user.map(|u| format!("{u:.1}")),
            user.map(|u| u <= 5.0),
        ),
        target(
            "peak RSS with 100k live connections (MiB)",
            "<= 64",
            hold.map(|h| {
                format!(
                    "{:.1} at {} connections",
                    h.peak_rss_kib as f64 / 1024.0,
                    h.connections
                )
            }),
            hold.filter(|h| h.connections >= 100_000)
                .map(|h| h.peak_rss_kib <= 64 * 1024),
        ),
        target(
            "socket tables at 100k connections, CPU per sample: sock_diag / proc (ratio)",
            "<= 1",
            tables.map(|(diag, proc)| format!("{diag:.0} / {proc:.0} ms")),
            tables.map(|(diag, proc)| diag <= proc),
        ),
        target(
            "first data after start, worst trial (s)",
            "<= 1",
            first.map(|f| format!("{f:.3}")),
            first.map(|f| f <= 1.0),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        measure::Pair,
        results::{BystanderSubject, Machine, ModeResult, StreamSubject},
        running::Stopped,
        settings::{BenchArgs, Settings},
        subject::Subject,
        workload::{BystanderResult, ChurnResult, Sample, StreamResult},
    };

    /// The first line of `text` starting with `start` after the line
    /// starting with `after` (a table's title), without trailing spaces.
    fn row_after(text: &str, start: &str, after: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let from = lines
            .iter()
            .position(|l| l.starts_with(after))
            .expect("the table is there");
        lines[from..]
            .iter()
            .find(|l| l.starts_with(start))
            .map(|l| l.trim_end().to_owned())
            .expect("the row is there")
    }

    fn pair<S: Sample>(untraced: S, traced: S) -> Pair<S> {
        Pair {
            traced_first: false,
            ratio: traced.per_second() / untraced.per_second(),
            untraced,
            traced,
            attach_s: Some(0.1),
            peak_rss_kib: Some(1024),
            other_load_cores: 0.01,
            other_tracers: Vec::new(),
            stopped: Stopped::default(),
        }
    }

    /// Bystander pairs at these traced rates against 1,000,000 syscalls/s untraced.
    fn bystander(subject: Subject, traced: &[f64]) -> BystanderSubject {
        let sample = |rate: f64| BystanderResult {
            syscalls: rate as u64,
            seconds: 1.0,
            rate,
        };
        let pairs = traced
            .iter()
            .map(|&rate| pair(sample(1e6), sample(rate)))
            .collect();
        BystanderSubject::new(subject, pairs, Vec::new())
    }

    fn churn(subject: Subject, untraced: f64, traced: f64) -> SubjectResult {
        let sample = |rate: f64| ChurnResult {
            connections: rate as u64,
            seconds: 1.0,
            rate,
            failures: 0,
            slowest_connect_ms: 0.1,
            window_waits: 0,
            listen_drops: Some(0),
        };
        let pairs = vec![pair(sample(untraced), sample(traced))];
        SubjectResult::new(subject, pairs, None, Vec::new())
    }

    fn results(bystander: Option<Vec<BystanderSubject>>, churn: Vec<SubjectResult>) -> Results {
        let args = BenchArgs {
            pairs: 3,
            seconds: 1.0,
            hold: 0,
            mode: Some(Mode::Reset),
            workload: None,
            quick: false,
            output: None,
        };
        let mut results = Results {
            format: 3,
            created_unix_s: 0,
            machine: Machine {
                kernel: "6.18".into(),
                cpus: 2,
                loadavg_at_start: "0.00 0.00 0.00".into(),
                loadavg_at_end: "0.00 0.00 0.00".into(),
            },
            settings: Settings::new(&args, 2, "/t/tracer".into()),
            churn: vec![ModeResult {
                mode: Mode::Reset,
                subjects: churn,
            }],
            bystander: bystander.map(|subjects| BystanderResults { cpu: 1, subjects }),
            stream: None,
            first_event: None,
            hold: None,
            targets: Vec::new(),
        };
        results.targets = targets(&results);
        results
    }

    fn target<'a>(results: &'a Results, what: &str) -> &'a Target {
        results
            .targets
            .iter()
            .find(|t| t.what.starts_with(what))
            .expect("the target is listed")
    }

    #[test]
    fn bystander_targets_for_tracer_default() {
        let measured = results(
            Some(vec![
                bystander(Subject::TracerAll, &[995_000.0, 1_000_000.0, 990_000.0]),
                bystander(Subject::TracerPid, &[900_000.0, 950_000.0, 970_000.0]),
                // The opt-in has no target: it is there to show its cost.
                bystander(Subject::TracerSyscallErrors, &[850_000.0]),
            ]),
            Vec::new(),
        );
        let all = target(&measured, "bystander, all processes");
        assert_eq!((all.measured.as_str(), all.met), ("0.995", Some(true)));
        let pid = target(&measured, "bystander, --pid");
        assert_eq!((pid.measured.as_str(), pid.met), ("0.950", Some(false)));

        let without = results(None, Vec::new());
        let all = target(&without, "bystander, all processes");
        assert_eq!((all.measured.as_str(), all.met), ("-", None));
    }

    #[test]
    fn bystander_table_and_ratios_beside_the_churn() {
        let measured = results(
            Some(vec![
                bystander(Subject::TracerAll, &[990_000.0, 1_000_000.0, 994_000.0]),
                bystander(Subject::TracerSyscallErrors, &[800_000.0]),
            ]),
            vec![churn(Subject::TracerAll, 30_000.0, 24_000.0)],
        );
        let text = render(&measured);
        let row = |start: &str, after: &str| row_after(&text, start, after);
        assert_eq!(
            row("tracer --syscall-errors on", "Bystander:"),
            "tracer --syscall-errors on    1,000,000    800,000   0.800  0.800-0.800    \
             0.80-0.80      250.0  0.01 / 0.01"
        );
        let header = row("subject", "Ratios");
        assert_eq!(
            header,
            "subject                     reset churn           bystander"
        );
        assert_eq!(
            row("tracer, all processes", "Ratios"),
            "tracer, all processes       0.800 (0.800-0.800)   0.994 (0.992-0.997)"
        );
        assert_eq!(
            row("tracer --syscall-errors on", "Ratios"),
            "tracer --syscall-errors on  -                     0.800 (0.800-0.800)"
        );
        assert!(text.contains("bystander on cpu 1"));
    }

    #[test]
    fn a_bystander_only_run_prints_no_churn_tables() {
        let mut measured = results(
            Some(vec![bystander(Subject::TracerAll, &[1_000_000.0])]),
            Vec::new(),
        );
        measured.churn.clear();
        let text = render(&measured);
        assert!(text.contains("\nBystander: "));
        assert!(!text.contains("Throughput") && !text.contains("Cost ("));
        assert!(text.contains("subject                     bystander\n"));
    }

    /// Stream pairs at these traced rates against 2 GB/s untraced.
    fn stream(subject: Subject, traced: &[f64]) -> StreamSubject {
        let sample = |rate: f64| StreamResult {
            bytes: rate as u64,
            seconds: 1.0,
            rate,
        };
        let pairs = traced
            .iter()
            .map(|&rate| pair(sample(2e9), sample(rate)))
            .collect();
        StreamSubject::new(subject, pairs, None, Vec::new())
    }

    #[test]
    fn stream_targets_table_and_ratios() {
        let mut measured = results(
            Some(vec![bystander(Subject::TracerAll, &[1_000_000.0])]),
            vec![churn(Subject::TracerAll, 30_000.0, 24_000.0)],
        );
        measured.stream = Some(StreamResults {
            sender_cpu: 0,
            receiver_cpu: 1,
            subjects: vec![
                stream(Subject::TracerAll, &[1.98e9, 2e9, 1.96e9]),
                stream(Subject::TracerPid, &[1.9e9]),
                stream(Subject::Control, &[2e9]),
            ],
        });
        measured.targets = targets(&measured);
        let all = target(&measured, "stream, all processes");
        assert_eq!((all.measured.as_str(), all.met), ("0.990", Some(true)));
        let pid = target(&measured, "stream, --pid");
        assert_eq!((pid.measured.as_str(), pid.met), ("0.950", Some(false)));

        let text = render(&measured);
        let row = |start: &str, after: &str| row_after(&text, start, after);
        assert_eq!(
            row("tracer, all processes", "Stream:"),
            "tracer, all processes          2000     1980   0.990  0.985-0.995    0.98-1.00  \
             \x20        -        -       -  0.01 / 0.01"
        );
        assert_eq!(
            row("subject", "Ratios"),
            "subject                     reset churn           bystander             stream"
        );
        assert_eq!(
            row("tracer, all processes", "Ratios"),
            "tracer, all processes       0.800 (0.800-0.800)   1.000 (1.000-1.000)   0.990 \
             (0.985-0.995)"
        );
        assert_eq!(
            row("none (control)", "Ratios"),
            "none (control)              -                     -                     1.000 \
             (1.000-1.000)"
        );
        assert!(text.contains("(stream noise floor: untraced vs untraced gives 1.000"));

        let without = results(None, Vec::new());
        let all = target(&without, "stream, all processes");
        assert_eq!((all.measured.as_str(), all.met), ("-", None));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(31_234.6), "31,235");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1_000.0), "-1,000");
    }
}
