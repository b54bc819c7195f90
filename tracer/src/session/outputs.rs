//! Where a trace's results go: `--events` lines as events are read, the live
//! view, `--csv` rows and `stats` lines at each written snapshot, and the
//! exit summary (stderr and `--summary-json`), and the `--prometheus`
//! endpoint, fed every snapshot. Files are opened and the endpoint bound by
//! [`Outputs::open`], before anything is loaded, so a path that cannot be
//! written or a port in use is an error at once. Another output is one more
//! field here, opened in `open` and fed in [`Outputs::show`] or
//! [`Outputs::write`].

use std::{io::Write as _, sync::Arc};

use anyhow::Context as _;
use tokio::sync::watch;

use crate::{
    aggregate::ConnectEnd,
    cli::TraceArgs,
    event::TraceEvent,
    findings::{self, Changes},
    proc::Cgroup,
    sink::{
        csv::CsvSink,
        json::{self, JsonSink},
        metrics::{Exposition, Metrics, serve},
        summary::{Sampling, SummaryError, SummaryFile},
    },
    snapshot::Snapshot,
};

/// Every output of a trace; each is off unless asked for.
pub struct Outputs {
    events: Option<EventLines>,
    csv: Option<CsvSink>,
    /// Where the live view reads snapshots, when it runs.
    view: Option<watch::Sender<Arc<Snapshot>>>,
    /// `--summary-json`, written at exit.
    summary: Option<SummaryFile>,
    /// `--prometheus`: the metrics state and where the endpoint reads them.
    metrics: Option<(Metrics, watch::Sender<Arc<Exposition>>)>,
}

impl Outputs {
    /// Opens the files the arguments name.
    pub fn open(args: &TraceArgs) -> anyhow::Result<Self> {
        let events = args.events.as_deref().map(JsonSink::open).transpose()?;
        let csv = args.csv.as_deref().map(CsvSink::open).transpose()?;
        let summary = args
            .summary_json
            .as_deref()
            .map(SummaryFile::create)
            .transpose()?;
        let metrics = match args.prometheus {
            Some(addr) => {
                let listener = serve::bind(addr)?;
                let (tx, rx) = watch::channel(Arc::new(Exposition::default()));
                let addr = serve::spawn(listener, rx)
                    .with_context(|| format!("serving --prometheus on {addr}"))?;
                eprintln!("tracer: serving Prometheus metrics at http://{addr}/metrics");
                Some((Metrics::new(args.interval), tx))
            }
            None => None,
        };
        Ok(Self {
            events: events.map(|sink| EventLines {
                sink,
                findings: Changes::default(),
            }),
            csv,
            view: None,
            summary,
            metrics,
        })
    }

    /// Sends snapshots to the live view from now on, starting with `first`.
    pub fn start_view(&mut self, first: Arc<Snapshot>) -> watch::Receiver<Arc<Snapshot>> {
        let (tx, rx) = watch::channel(first);
        self.view = Some(tx);
        rx
    }

    /// The `--events` output, if on.
    pub fn events(&mut self) -> Option<&mut EventLines> {
        self.events.as_mut()
    }

    /// Shows a snapshot just taken (the live view, the metrics and the
    /// `finding` lines of `--events` get every one).
    pub fn show(&mut self, snapshot: &Arc<Snapshot>) {
        if let Some(events) = self.events.as_mut() {
            events.findings(snapshot);
        }
        if let Some(view) = &self.view {
            view.send_replace(Arc::clone(snapshot));
        }
        if let Some((metrics, latest)) = self.metrics.as_mut() {
            latest.send_replace(Arc::new(metrics.update(snapshot)));
        }
    }

    /// Writes a snapshot: CSV rows, and a `stats` line to `--events` stamped
    /// `wall_ns`.
    pub fn write(&mut self, snapshot: &Snapshot, wall_ns: u64) -> anyhow::Result<()> {
        if let Some(csv) = self.csv.as_mut() {
            csv.write(snapshot)?;
        }
        if let Some(events) = self.events.as_mut() {
            let stats = json::render_stats(wall_ns, &snapshot.kernel);
            events.sink.write(&stats);
            events.sink.flush();
        }
        Ok(())
    }

    /// Fails with the first write to `--events` that failed, if any.
    pub fn check(&mut self) -> anyhow::Result<()> {
        match self.events.as_mut().and_then(|e| e.sink.take_error()) {
            Some(err) => Err(err).context("writing --events output"),
            None => Ok(()),
        }
    }

    /// The exit summary of `last`: on stderr, and to `--summary-json`.
    /// Written without `eprintln!`, which would panic when the terminal is
    /// already gone (a hang-up).
    pub fn summary(&mut self, last: &Snapshot, sampling: Sampling) -> Result<(), SummaryError> {
        let k = &last.kernel;
        let mut err = std::io::stderr();
        // What is still queued for --events gets a moment to be written.
        let unwritten = self.events.as_mut().map(|events| {
            events.sink.finish(EVENTS_PATIENCE);
            events.sink.unwritten()
        });
        let _ = writeln!(
            err,
            "tracer: {} events read; kernel: {} submitted, {} dropped (ring buffer full), {} filtered, {} unattributed, {} owners evicted (owner map full), {} resets for closed ports; {} undecodable",
            k.read,
            k.submitted,
            k.dropped,
            k.filtered,
            k.unattributed,
            k.owners_evicted,
            k.closed_port_resets,
            k.decode_errors
        );
        if let Some(csv) = &self.csv {
            let _ = writeln!(
                err,
                "tracer: {} CSV rows written to {}",
                csv.rows,
                csv.path().display()
            );
        }
        if let Some(lines) = unwritten.filter(|&n| n > 0) {
            let _ = writeln!(
                err,
                "tracer: {lines} --events lines not written: their reader did not keep up"
            );
        }
        match self.summary.as_mut() {
            Some(file) => file.write(
                k,
                self.csv.as_ref().map(|csv| csv.rows),
                unwritten,
                sampling,
            ),
            None => Ok(()),
        }
    }
}

/// How long the exit waits for `--events` lines still queued to be written.
const EVENTS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// `--events`: a line per event, written as events are read, on a thread of
/// its own: a reader that does not keep up costs lines, which are counted,
/// never the draining of the ring buffer. A failed write is reported by
/// [`Outputs::check`].
pub struct EventLines {
    sink: JsonSink,
    /// The findings of the previous snapshot.
    findings: Changes,
}

impl EventLines {
    /// Writes one event's lines; `cgroup` is its owner's, `state_at` the
    /// socket's state then, `waited` how long a failed connect waited.
    pub fn event(
        &mut self,
        ev: &TraceEvent,
        cgroup: Option<&Cgroup>,
        state_at: u8,
        waited: Option<ConnectEnd>,
    ) {
        self.sink.event(ev, cgroup, state_at, waited);
    }

    /// Writes a DNS lookup's line; `cgroup` is its owner's.
    pub fn lookup(&mut self, lookup: &crate::dns::Lookup, cgroup: Option<&Cgroup>) {
        self.sink.lookup(lookup, cgroup);
    }

    /// Writes the `start` line, before any event.
    pub fn start(&mut self, ts_ns: u64, start: &crate::sink::json::Start<'_>) {
        self.sink
            .write(&crate::sink::json::render_start(ts_ns, start));
    }

    /// Hands what is buffered to the writer, without waiting.
    pub fn flush(&mut self) {
        self.sink.flush();
    }

    /// Writes a `finding` line for each finding that started or ended
    /// since the previous snapshot, stamped with this one's time.
    fn findings(&mut self, snapshot: &Snapshot) {
        let changes = self.findings.next(findings::findings(snapshot));
        if changes.is_empty() {
            return;
        }
        let ts_ns = snapshot
            .taken_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        for (transition, finding) in &changes {
            let cgroup = snapshot
                .processes
                .iter()
                .find(|p| p.id.pid == finding.pid)
                .and_then(|p| p.cgroup.as_deref());
            self.sink
                .write(&json::render_finding(ts_ns, *transition, finding, cgroup));
        }
        self.sink.flush();
    }
}
