//! The detail view's history panel: one sparkline per key number of the
//! process over the last 10 minutes, and under them where its findings
//! started. Left out when the screen has no room for it.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{panel, spark, style, title};
use crate::{
    human,
    snapshot::{ProcessSnapshot, Snapshot},
    tui::{history::Series, state::ViewState},
};

/// Name and latest value, before the sparkline.
const NAME_WIDTH: usize = 13;
const VALUE_WIDTH: usize = 6;
const LABEL_WIDTH: usize = NAME_WIDTH + 1 + VALUE_WIDTH + 1;
/// Under this many lines (title, one series, the marks) the panel is left out.
pub const MIN_HEIGHT: u16 = 3;

/// What the panel would show of process `p`.
pub struct Panel {
    /// The series that were not zero throughout, with their values.
    series: Vec<(Series, Vec<Option<f32>>)>,
    /// Those that were.
    quiet: Vec<Series>,
    /// Slots where a finding started, the window's oldest being 0.
    starts: Vec<usize>,
    slots: usize,
    span: std::time::Duration,
}

impl Panel {
    /// `None` when nothing of the process was recorded in the window.
    pub fn new(state: &ViewState, snapshot: &Snapshot, p: &ProcessSnapshot) -> Option<Self> {
        let h = &state.history;
        let mut series = Vec::new();
        let mut quiet = Vec::new();
        let mut seen = false;
        for s in Series::ALL {
            let values = h.series(p.id, s, snapshot.uptime);
            seen |= values.iter().any(Option::is_some);
            if values.iter().flatten().any(|&v| v > 0.0) {
                series.push((s, values));
            } else {
                quiet.push(s);
            }
        }
        if !seen {
            return None;
        }
        let mut starts: Vec<usize> = h
            .starts(p.id, snapshot.uptime)
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        starts.dedup();
        Some(Self {
            series,
            quiet,
            starts,
            slots: h.slots(),
            span: h.span(),
        })
    }

    /// Lines it would use: title, series, the quiet ones, the marks.
    pub fn wanted_height(&self) -> u16 {
        (self.series.len() + 2 + usize::from(!self.quiet.is_empty())) as u16
    }

    /// Draws as many series as fit in `area`, most telling first.
    pub fn render(&self, area: Rect, frame: &mut Frame<'_>) {
        if area.height < MIN_HEIGHT {
            return;
        }
        let note = format!("last {} · ▲ a finding started", human::age(self.span));
        let inner = panel(title("History", note), area, frame);
        let bars = usize::from(inner.width).saturating_sub(LABEL_WIDTH);
        // Room for series after the marks line.
        let mut room = usize::from(inner.height).saturating_sub(1);
        let mut lines: Vec<Line<'_>> = Vec::new();
        for (s, values) in self.series.iter().take(room) {
            let latest = values.iter().rev().flatten().next().copied().unwrap_or(0.0);
            lines.push(Line::from(vec![
                Span::raw(format!("{:<NAME_WIDTH$} ", s.name())),
                Span::styled(
                    format!("{:>VALUE_WIDTH$} ", s.format(latest)),
                    style::title(),
                ),
                Span::raw(spark::line(values, bars)),
            ]));
        }
        room -= lines.len();
        if room > 0 && !self.quiet.is_empty() {
            let names: Vec<&str> = self.quiet.iter().map(|s| s.name()).collect();
            lines.push(Line::styled(
                format!("0 throughout: {}", names.join(", ")),
                style::dim(),
            ));
        }
        lines.push(self.marks(bars));
        frame.render_widget(Paragraph::new(lines), inner);
    }

    /// `findings started   ▲      ▲       now`, the marks under the slots.
    fn marks(&self, bars: usize) -> Line<'static> {
        const NOW: &str = " now";
        let columns: Vec<usize> = self
            .starts
            .iter()
            .map(|&slot| spark::column_of(slot, self.slots, bars))
            .collect();
        let mut axis = vec![' '; bars];
        for &c in &columns {
            if let Some(c) = axis.get_mut(c) {
                *c = '▲';
            }
        }
        // "now" at the right end, unless a mark is there.
        let room = bars.saturating_sub(NOW.len());
        let now = if bars > NOW.len() && columns.iter().all(|&c| c < room) {
            axis.truncate(room);
            NOW.trim_start().to_owned()
        } else {
            String::new()
        };
        if !now.is_empty() {
            axis.push(' ');
        }
        Line::from(vec![
            Span::styled(
                format!("{:<LABEL_WIDTH$}", "findings started"),
                style::dim(),
            ),
            Span::styled(axis.into_iter().collect::<String>(), style::warn()),
            Span::styled(now, style::dim()),
        ])
    }
}
