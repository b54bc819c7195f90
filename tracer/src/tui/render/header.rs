//! Two lines on top: what tracer is doing and what it may be missing
//! (dropped and unattributed events are always shown, never hidden; nor is
//! /proc being sampled less often than the view refreshes). A sparkline of
//! the events/s history comes after the rate when the line has room for it.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{spark, style};
use crate::{
    human,
    snapshot::Snapshot,
    tui::{ViewContext, state::ViewState},
};

pub const HEIGHT: u16 = 2;
/// Characters of the events/s sparkline; it is left out below this room.
const SPARK_WIDTH: usize = 12;

pub fn render(
    state: &ViewState,
    snapshot: &Snapshot,
    ctx: &ViewContext,
    area: Rect,
    frame: &mut Frame<'_>,
) {
    let k = &snapshot.kernel;
    let counter = |name: &'static str, n: u64| {
        let style = if n > 0 { style::bad() } else { style::dim() };
        [
            Span::styled(format!("{name} "), style::dim()),
            Span::styled(human::count(n), style),
            Span::raw("  "),
        ]
    };
    let mut first = vec![
        Span::styled("tracer", style::title()),
        Span::raw("  "),
        Span::styled("up ", style::dim()),
        Span::raw(human::age(snapshot.uptime)),
        Span::raw("  "),
        Span::raw(human::rate(snapshot.events_per_sec)),
        Span::styled(" events/s  ", style::dim()),
    ];
    first.extend(counter("dropped", k.dropped));
    first.extend(counter("unattributed", k.unattributed));
    if k.closed_port_resets > 0 {
        // Connects to closed ports: ownerless by nature, so not a warning.
        first.push(Span::raw(human::count(k.closed_port_resets)));
        first.push(Span::styled(" closed-port RSTs ", style::dim()));
        // The port most connected to, by a client that should not.
        let top = snapshot
            .closed_ports
            .first()
            .filter(|(port, _)| *port != 0)
            .map_or(String::new(), |(port, n)| {
                format!("(:{port} ×{}) ", human::count(*n))
            });
        first.push(Span::styled(format!("{top} "), style::dim()));
    }
    if let Some(every) = snapshot.sampled_every {
        // A large host: socket and FD gauges are older than the counters.
        first.push(Span::styled(
            format!("sockets sampled every {}  ", human::age(every)),
            style::warn(),
        ));
    }
    if !snapshot.syscall_errors_counted {
        // No cheap hook for them here; `?` shows why and how to turn them on.
        first.push(Span::styled("syscall errors off  ", style::dim()));
    }
    if snapshot.traced_exited {
        first.push(Span::styled(
            "every traced process has exited  ",
            style::warn(),
        ));
    }
    if state.paused.is_some() {
        first.push(Span::styled(" PAUSED ", style::paused()));
    }
    // After the rate, only where nothing else is pushed off the line.
    let events = state.history.events(snapshot.uptime);
    let used = Line::from(first.clone()).width();
    if events.iter().any(Option::is_some) && used + SPARK_WIDTH + 2 <= usize::from(area.width) {
        let at = first
            .iter()
            .position(|s| s.content.starts_with(" events/s"))
            .map_or(first.len(), |i| i + 1);
        first.insert(at, Span::raw("  "));
        first.insert(
            at,
            Span::styled(spark::line(&events, SPARK_WIDTH), style::dim()),
        );
    }
    let second = Line::from(vec![
        Span::styled("host ", style::dim()),
        Span::raw(ctx.host.clone()),
        Span::styled(" · kernel ", style::dim()),
        Span::raw(ctx.kernel.clone()),
        Span::styled(" · ", style::dim()),
        Span::raw(ctx.scope.clone()),
        Span::styled(" · hooks ", style::dim()),
        Span::raw(ctx.hooks.clone()),
    ]);
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), area);
}
