//! Two lines on top: what tracer is doing and what it may be missing
//! (dropped and unattributed events are always shown, never hidden; nor is
//! /proc being sampled less often than the view refreshes).

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::style;
use crate::{
    human,
    snapshot::Snapshot,
    tui::{ViewContext, state::ViewState},
};

pub const HEIGHT: u16 = 2;

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
