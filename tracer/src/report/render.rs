//! The report as one HTML page: pure, from what the passes over the capture
//! (and the events file) found; no I/O.

use std::fmt::Write as _;

use super::{
    capture::{self, Facts},
    chart::{self, ChartError, Span},
    events::{Events, RemoteRow},
    html::{STYLE, Table, escape},
    metrics::{self, FAILED_CONNECTS, Metric, RETRANSMITS, RSTS},
    series::Collector,
    summary::{Process, Summary},
};
use crate::{findings::Severity, human, snapshot::Remote};

/// Processes listed in the ranking table, beyond which they are counted.
const MAX_LISTED: usize = 200;
/// Episodes and remotes listed.
const MAX_EPISODES_LISTED: usize = 300;
const MAX_REMOTES_LISTED: usize = 50;

/// Everything the page shows.
pub struct Report<'a> {
    /// The capture file, as the user named it.
    pub capture: &'a str,
    pub facts: &'a Facts,
    pub summary: &'a Summary,
    /// Most trouble first.
    pub ranked: &'a [&'a Process],
    /// How many of `ranked` have charts.
    pub charted: usize,
    pub series: &'a Collector,
    /// The events file as named, and what it said.
    pub events: Option<(&'a str, &'a Events)>,
}

/// The whole page.
pub fn render(r: &Report<'_>) -> Result<String, ChartError> {
    let span = Span {
        start: r.summary.first.unwrap_or(0),
        end: r.summary.last.unwrap_or(0),
    };
    let mut out = String::with_capacity(256 * 1024);
    let title = format!("tracer report: {}", r.capture);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n\
         <h1>tracer report</h1><p class=sub>{} · {} to {} UTC ({})</p>\n",
        escape(&title),
        escape(r.capture),
        when(span.start),
        when(span.end),
        human::age(std::time::Duration::from_secs(
            u64::try_from(span.end - span.start).unwrap_or(0)
        )),
    );
    ranking(r, &mut out);
    episodes(r, span, &mut out);
    out.push_str("<h2>Charts</h2>\n");
    let _ = writeln!(
        out,
        "<p class=note>One chart per process, {} shown. Rates are per second, \
         gauges the peak in each time step of {}; shaded: while a finding held.</p>",
        r.charted,
        human::age(std::time::Duration::from_secs(
            u64::try_from(r.series.width()).unwrap_or(1)
        )),
    );
    for p in r.ranked.iter().take(r.charted) {
        process_section(r, p, span, &mut out)?;
    }
    remotes(r, &mut out);
    facts(r, &mut out);
    out.push_str("</body></html>\n");
    Ok(out)
}

/// `2024-03-14 14:02:05`.
fn when(secs: i64) -> String {
    humantime::format_rfc3339_seconds(capture::time(secs))
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// How a process is named everywhere in the page.
fn name(p: &Process) -> String {
    format!("{} (pid {})", p.comm, p.key.pid)
}

/// A total or peak, or a dash when the capture has no such column.
fn cell(value: Option<u64>) -> String {
    value.map_or_else(|| "#–".to_owned(), |v| format!("#{v}"))
}

fn ranking(r: &Report<'_>, out: &mut String) {
    let _ = write!(
        out,
        "<h2>Processes by trouble</h2>\n<p class=note>{}, ranked by the findings \
         they had (critical first), then by trouble events: failed connects, retransmits, \
         RSTs and failed network syscalls. Counts are what happened during the capture; \
         socket and FD numbers are peaks.</p>\n",
        human::plural(r.ranked.len() as u64, "process", "processes")
    );
    let mut t = Table::new(&[
        "#",
        "process",
        "findings",
        "#failed connects",
        "#retransmits",
        "#RSTs",
        "#CLOSE_WAIT",
        "#TIME_WAIT",
        "#open FDs",
        "#handshake p99",
        "seen",
    ]);
    for (i, p) in r.ranked.iter().take(MAX_LISTED).enumerate() {
        let trouble = p.trouble();
        let mut findings = Vec::new();
        if trouble.critical > 0 {
            findings.push(format!(
                "<span class=critical>{} critical</span>",
                trouble.critical
            ));
        }
        if trouble.warning > 0 {
            findings.push(format!(
                "<span class=warning>{} warning</span>",
                trouble.warning
            ));
        }
        let label = escape(&name(p));
        let label = if i < r.charted {
            format!("<a href=\"#p{i}\">{label}</a>")
        } else {
            label
        };
        let fds = match (p.total(Metric::FdsOpen), p.total(Metric::FdLimit)) {
            (Some(open), Some(limit)) => format!("#{open} of {limit}"),
            (open, _) => cell(open),
        };
        let seen = format!(
            "{}–{}{}",
            chart::clock(p.first as f64, false),
            chart::clock(p.last as f64, false),
            if p.exited { ", exited" } else { "" }
        );
        t.row(&[
            format!("#{}", i + 1),
            label,
            findings.join(" "),
            cell(metrics::sum(&p.total, FAILED_CONNECTS)),
            cell(metrics::sum(&p.total, RETRANSMITS)),
            cell(metrics::sum(&p.total, RSTS)),
            cell(p.total(Metric::CloseWait)),
            cell(p.total(Metric::TimeWait)),
            fds,
            p.total(Metric::HandshakeP99Us)
                .map_or_else(|| "#–".to_owned(), |us| format!("#{}", human::micros(us))),
            seen,
        ]);
    }
    out.push_str(&t.finish());
    if r.ranked.len() > MAX_LISTED {
        let _ = writeln!(
            out,
            "<p class=note>… and {} more processes with less trouble.</p>",
            r.ranked.len() - MAX_LISTED
        );
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "<span class=critical>critical</span>",
        Severity::Warning => "<span class=warning>warning</span>",
    }
}

fn episodes(r: &Report<'_>, span: Span, out: &mut String) {
    out.push_str("<h2>Findings over time</h2>\n");
    let mut all: Vec<(&Process, &super::summary::Episode)> = r
        .ranked
        .iter()
        .flat_map(|p| p.episodes.iter().map(move |e| (*p, e)))
        .collect();
    if all.is_empty() {
        out.push_str(
            "<p>No finding held in any row. (Per-remote findings need the remotes, which a \
             CSV does not carry: give the run's <code>--events</code> file for them.)</p>\n",
        );
        return;
    }
    all.sort_by_key(|(p, e)| (e.start, std::cmp::Reverse(e.severity), p.key));
    let _ = writeln!(
        out,
        "<p class=note>The findings tracer's rules make of each row, from the first row \
         where one held to the last; times in UTC.</p>"
    );
    let mut t = Table::new(&[
        "process", "severity", "finding", "from", "to", "#for", "numbers",
    ]);
    for (p, e) in all.iter().take(MAX_EPISODES_LISTED) {
        let to = if !e.open {
            chart::clock(e.end as f64, false)
        } else if p.last >= span.end {
            "the end".to_owned()
        } else {
            format!("{} (its last row)", chart::clock(e.end as f64, false))
        };
        let lasted = u64::try_from(e.end - e.start).unwrap_or(0);
        t.row(&[
            escape(&name(p)),
            severity(e.severity).to_owned(),
            escape(&e.headline),
            chart::clock(e.start as f64, false),
            to,
            format!("#{}", human::age(std::time::Duration::from_secs(lasted))),
            escape(&e.evidence),
        ]);
    }
    out.push_str(&t.finish());
    let dropped: u64 = r.ranked.iter().map(|p| p.episodes_dropped).sum();
    let more = all.len().saturating_sub(MAX_EPISODES_LISTED) as u64 + dropped;
    if more > 0 {
        let _ = writeln!(out, "<p class=note>… and {more} more.</p>");
    }
}

fn process_section(
    r: &Report<'_>,
    p: &Process,
    span: Span,
    out: &mut String,
) -> Result<(), ChartError> {
    let index = r.ranked.iter().position(|q| q.key == p.key).unwrap_or(0);
    let _ = write!(
        out,
        "<section class=process id=p{index}><h3>{}. {}</h3>",
        index + 1,
        escape(&name(p))
    );
    let chart = match r.series.series(&p.key) {
        Some(series) => chart::draw(series, r.series, span, &p.episodes)?,
        None => None,
    };
    match chart {
        Some(svg) => {
            out.push_str(&svg);
            out.push('\n');
        }
        None => out.push_str("<p class=note>No series to draw: the capture has one row of it, or none of the charted columns.</p>\n"),
    }
    out.push_str("</section>\n");
    Ok(())
}

fn remotes(r: &Report<'_>, out: &mut String) {
    out.push_str("<h2>Remote endpoints</h2>\n");
    let Some((name, events)) = r.events else {
        out.push_str(
            "<p>A CSV has one row per process, not per remote. Give the run's events \
             (<code>tracer report CAPTURE.csv --events EVENTS.jsonl</code>) for connects, \
             retransmits and resets per remote endpoint.</p>\n",
        );
        return;
    };
    let findings = events.findings();
    let _ = writeln!(
        out,
        "<p class=note>From {}: {} events. A remote is a server (address:port) once a \
         connect to it was seen; other peers are grouped by address.</p>",
        escape(name),
        events.lines
    );
    if !findings.is_empty() {
        out.push_str("<h3>Findings at the end of the events</h3>");
        let mut t = Table::new(&["process", "severity", "finding", "numbers"]);
        for f in findings.iter().take(MAX_REMOTES_LISTED) {
            t.row(&[
                escape(&format!("{} (pid {})", f.comm, f.pid)),
                severity(f.severity).to_owned(),
                escape(&f.headline),
                escape(&f.evidence),
            ]);
        }
        out.push_str(&t.finish());
    }
    let rows = events.remotes();
    let mut t = Table::new(&[
        "process",
        "remote",
        "#connects",
        "#ok",
        "#refused",
        "#timed out",
        "#abandoned",
        "#other failures",
        "#SYN retransmits",
        "#retransmits",
        "#RSTs sent",
        "#RSTs received",
        "#handshake max",
        "trouble from",
        "trouble to",
    ]);
    for row in rows.iter().take(MAX_REMOTES_LISTED) {
        remote_row(row, &mut t);
    }
    out.push_str(&t.finish());
    if rows.len() > MAX_REMOTES_LISTED {
        let _ = writeln!(
            out,
            "<p class=note>… and {} more remotes with less trouble.</p>",
            rows.len() - MAX_REMOTES_LISTED
        );
    }
}

fn remote_row(row: &RemoteRow<'_>, t: &mut Table) {
    let s = &row.stats.snapshot;
    let c = &s.counts;
    let remote = match s.remote {
        Remote::Client(ip) => format!("{ip} (peer)"),
        other => human::remote(&other),
    };
    let at = |t: Option<i64>| t.map_or_else(String::new, |t| chart::clock(t as f64, false));
    t.row(&[
        escape(&format!("{} (pid {})", row.comm, row.pid)),
        escape(&remote),
        format!("#{}", c.connects),
        format!("#{}", c.connect_ok),
        format!("#{}", c.connect_refused),
        format!("#{}", c.connect_timeout),
        format!("#{}", c.connect_abandoned),
        format!("#{}", c.connect_failed_other),
        format!("#{}", c.syn_retransmits),
        format!("#{}", c.retransmits),
        format!("#{}", c.rst_sent),
        format!("#{}", c.rst_received),
        if s.handshake_us.count > 0 {
            format!("#{}", human::micros(s.handshake_us.max))
        } else {
            "#–".to_owned()
        },
        at(row.stats.first_trouble),
        at(row.stats.last_trouble),
    ]);
}

fn facts(r: &Report<'_>, out: &mut String) {
    let f = r.facts;
    let s = r.summary;
    let mut dl = String::from("<h2>The capture</h2>\n<dl>");
    let mut fact = |term: &str, value: String| {
        let _ = write!(dl, "<dt>{}</dt><dd>{value}</dd>", escape(term));
    };
    fact("file", escape(r.capture));
    fact("size", format!("{} bytes", f.bytes));
    fact(
        "time",
        format!(
            "{} to {} UTC",
            when(s.first.unwrap_or(0)),
            when(s.last.unwrap_or(0))
        ),
    );
    fact(
        "snapshot interval",
        s.interval().map_or_else(
            || "one snapshot".to_owned(),
            |i| {
                format!(
                    "about {}",
                    human::age(std::time::Duration::from_secs(
                        u64::try_from(i).unwrap_or(0)
                    ))
                )
            },
        ),
    );
    let exited = s.processes.iter().filter(|p| p.exited).count();
    fact(
        "processes",
        format!("{} ({exited} exited during the capture)", s.processes.len()),
    );
    if s.forgotten > 0 {
        fact(
            "processes forgotten",
            format!(
                "{} with the least trouble, to bound memory (a forgotten process \
                 seen again is counted afresh)",
                s.forgotten
            ),
        );
    }
    fact("rows", f.rows.to_string());
    if f.skipped > 0 {
        fact(
            "rows skipped",
            format!(
                "{} (first: {})",
                f.skipped,
                escape(f.first_skipped.as_deref().unwrap_or(""))
            ),
        );
    }
    if f.truncated_last_line {
        fact(
            "last line",
            "cut short (the run stopped while writing it): left out".to_owned(),
        );
    }
    if f.repeated_headers > 0 {
        fact(
            "header lines among the rows",
            format!("{} (files joined together), skipped", f.repeated_headers),
        );
    }
    fact("columns", f.columns.to_string());
    if !f.missing.is_empty() {
        fact(
            "columns this file lacks",
            format!(
                "{} (written by an older tracer)",
                escape(&f.missing.join(", "))
            ),
        );
    }
    if !f.unknown.is_empty() {
        fact(
            "columns not read",
            format!(
                "{} (not known to this version)",
                escape(&f.unknown.join(", "))
            ),
        );
    }
    match r.events.and_then(|(_, e)| e.start.as_ref()) {
        Some(start) => {
            for (label, value) in start {
                fact(label, escape(value));
            }
        }
        None => fact(
            "host, kernel, hook plan",
            "not recorded in a CSV capture: give the run's <code>--events</code> file (its \
             <code>start</code> line says them)"
                .to_owned(),
        ),
    }
    match r.events {
        Some((name, e)) => {
            fact("events file", escape(name));
            fact(
                "events",
                format!(
                    "{} lines{}, {} unattributed",
                    e.lines,
                    match (e.first, e.last) {
                        (Some(a), Some(b)) => format!(" from {} to {} UTC", when(a), when(b)),
                        _ => String::new(),
                    },
                    e.unattributed_events
                ),
            );
            if e.processes_dropped > 0 {
                fact(
                    "events not read",
                    format!(
                        "{} of processes beyond the first 1024 (to bound memory)",
                        e.processes_dropped
                    ),
                );
            }
            if e.skipped > 0 {
                fact(
                    "event lines skipped",
                    format!(
                        "{} (first: {})",
                        e.skipped,
                        escape(e.first_skipped.as_deref().unwrap_or(""))
                    ),
                );
            }
            match &e.stats {
                Some(stats) => {
                    let text: Vec<String> = stats.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    fact("kernel counts (last stats line)", escape(&text.join(", ")));
                }
                None => fact(
                    "kernel counts",
                    "no stats line in the events file".to_owned(),
                ),
            }
        }
        None => fact(
            "dropped, unattributed",
            "not in a CSV capture: give the run's <code>--events</code> file (its stats \
             lines count them)"
                .to_owned(),
        ),
    }
    dl.push_str("</dl>\n");
    out.push_str(&dl);
}
