//! Findings: a one-line-each panel under the process table, and a full
//! screen (`f`) with the evidence of each on its own line.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{List, ListItem, ListState, Paragraph},
};

use super::{panel, style, title};
use crate::{
    findings::{Finding, Severity},
    tui::state::ViewState,
};

const NONE: &str = "nothing crosses a threshold (? lists what is checked)";

fn tag(s: Severity) -> Span<'static> {
    let text = match s {
        Severity::Critical => "CRIT ",
        Severity::Warning => "WARN ",
    };
    Span::styled(text, style::severity_tag(s))
}

fn who(f: &Finding) -> Span<'static> {
    Span::styled(format!("{} ({}): ", f.comm, f.pid), style::title())
}

/// The panel of the main screen: one line per finding, evidence after the
/// headline as far as the width allows.
pub fn render_panel(all: &[Finding], area: Rect, frame: &mut Frame<'_>) {
    let note = if all.is_empty() {
        String::new()
    } else {
        format!("{} · f shows all with their evidence", all.len())
    };
    let inner = panel(title("Findings", note), area, frame);
    if all.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled(NONE, style::dim())), inner);
        return;
    }
    let lines: Vec<Line<'_>> = all
        .iter()
        .map(|f| {
            Line::from(vec![
                tag(f.severity),
                who(f),
                Span::styled(f.headline.clone(), style::severity(f.severity)),
                Span::styled(format!(" — {}", f.evidence), style::dim()),
            ])
        })
        .collect();
    let mut lines = lines;
    let height = usize::from(inner.height);
    if lines.len() > height {
        let shown = height.saturating_sub(1);
        let more = lines.len() - shown;
        lines.truncate(shown);
        lines.push(Line::styled(format!("… {more} more (f)"), style::dim()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The findings screen: headline, then the evidence indented below it.
pub fn render_screen(state: &ViewState, all: &[Finding], area: Rect, frame: &mut Frame<'_>) {
    let inner = panel(
        title(
            "Findings",
            format!("{} · Enter opens the process · Esc back", all.len()),
        ),
        area,
        frame,
    );
    if all.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled(NONE, style::dim())), inner);
        return;
    }
    let items: Vec<ListItem<'_>> = all
        .iter()
        .map(|f| {
            ListItem::new(vec![
                Line::from(vec![
                    tag(f.severity),
                    who(f),
                    Span::styled(f.headline.clone(), style::severity(f.severity)),
                ]),
                Line::from(vec![Span::raw("     "), Span::raw(f.evidence.clone())]),
            ])
        })
        .collect();
    let list = List::new(items).highlight_style(style::selected());
    let mut list_state = ListState::default().with_selected(Some(state.finding.min(all.len() - 1)));
    frame.render_stateful_widget(list, inner, &mut list_state);
}
