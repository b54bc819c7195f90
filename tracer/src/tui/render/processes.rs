//! The main screen: one row per process, and the findings panel under it.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::Style,
    text::Line,
    widgets::{Cell, Paragraph, Row, Table, TableState},
};

use super::{findings, panel, style, title, worst};
use crate::{
    findings::Finding,
    snapshot::Snapshot,
    tui::{columns, state::ViewState},
};

pub fn render(
    state: &ViewState,
    snapshot: &Snapshot,
    all: &[Finding],
    area: Rect,
    frame: &mut Frame<'_>,
) {
    // The findings of the processes in the table (the filter applies).
    let rows = state.rows(snapshot);
    let shown: Vec<Finding> = all
        .iter()
        .filter(|f| rows.iter().any(|p| p.id.pid == f.pid))
        .cloned()
        .collect();
    // The table keeps its rows or half the height, whichever is less; the
    // findings panel gets a line per finding from the rest.
    let table_wants = (rows.len() as u16 + 2).min(area.height / 2);
    let panel_wants = shown.len().max(1) as u16 + 1;
    let panel_height = panel_wants
        .min(area.height.saturating_sub(table_wants))
        .max(2);
    let [table_area, findings_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(panel_height)]).areas(area);
    table(state, snapshot, all, table_area, frame);
    findings::render_panel(&shown, findings_area, frame);
}

fn table(
    state: &ViewState,
    snapshot: &Snapshot,
    all: &[Finding],
    area: Rect,
    frame: &mut Frame<'_>,
) {
    let rows = state.rows(snapshot);
    let arrow = if state.descending { "▼" } else { "▲" };
    let mut note = format!(
        "{} of {} · sorted by {} {arrow}",
        rows.len(),
        snapshot.processes.len(),
        state.sort.heading()
    );
    if state.editing_filter || !state.filter.is_empty() {
        note += &format!(" · filter “{}”", state.filter);
    }
    let inner = panel(title("Processes", note), area, frame);
    if rows.is_empty() {
        let text = if snapshot.processes.is_empty() {
            "no TCP activity yet"
        } else {
            "no process matches the filter (Esc clears it)"
        };
        frame.render_widget(Paragraph::new(Line::styled(text, style::dim())), inner);
        return;
    }
    let cols = columns::fitting(inner.width, state.sort);
    let header = Row::new(cols.iter().map(|&c| {
        let s = if c == state.sort {
            style::sorted_heading()
        } else {
            style::heading()
        };
        align(c.numeric(), c.heading().to_owned()).style(s)
    }));
    let body = rows.iter().map(|p| {
        let row_style = match worst(all, p.id.pid) {
            Some(s) => style::severity(s),
            None if p.exited => style::dim(),
            None => Style::new(),
        };
        Row::new(cols.iter().map(|&c| align(c.numeric(), c.cell(p)))).style(row_style)
    });
    let widths = cols.iter().map(|c| Constraint::Length(c.width()));
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(style::selected());
    let mut table_state = TableState::new().with_selected(state.selected_index(&rows));
    frame.render_stateful_widget(table, inner, &mut table_state);
}

fn align(right: bool, text: String) -> Cell<'static> {
    if right {
        Cell::new(Line::from(text).right_aligned())
    } else {
        Cell::new(text)
    }
}
