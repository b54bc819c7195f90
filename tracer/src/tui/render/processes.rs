//! The main screen: one row per process (with a trend of the sorted-by
//! number where the width allows), and the findings panel under it.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::Style,
    text::Line,
    widgets::{Cell, Paragraph, Row, Table, TableState},
};

use super::{findings, panel, spark, style, title, worst};
use crate::{
    findings::Finding,
    human,
    snapshot::Snapshot,
    tui::{columns, history::Series, state::ViewState},
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
    // The panel's inside is as wide as the panel.
    let dns = snapshot.processes.iter().any(|p| p.counts.dns_queries > 0);
    let fitted = columns::fitting(area.width, state.sort, dns);
    let trend = Series::for_column(state.sort);
    if fitted.trend {
        note += &format!(
            " · {} {}, last {}",
            columns::TREND_HEADING,
            trend.name(),
            human::age(state.history.span())
        );
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
    let cols = &fitted.columns;
    let mut header: Vec<Cell<'static>> = cols
        .iter()
        .map(|&c| {
            let s = if c == state.sort {
                style::sorted_heading()
            } else {
                style::heading()
            };
            align(c.numeric(), c.heading().to_owned()).style(s)
        })
        .collect();
    if fitted.trend {
        header.push(Cell::new(columns::TREND_HEADING).style(style::heading()));
    }
    let header = Row::new(header);
    let body = rows.iter().map(|p| {
        let row_style = match worst(all, p.id.pid) {
            Some(s) => style::severity(s),
            None if p.exited => style::dim(),
            None => Style::new(),
        };
        let mut cells: Vec<Cell<'static>> = cols
            .iter()
            .map(|&c| align(c.numeric(), c.cell(p)))
            .collect();
        if fitted.trend {
            let values = state.history.series(p.id, trend, snapshot.uptime);
            cells.push(Cell::new(spark::line(
                &values,
                usize::from(columns::TREND_WIDTH),
            )));
        }
        Row::new(cells).style(row_style)
    });
    let mut widths: Vec<Constraint> = cols.iter().map(|c| Constraint::Length(c.width())).collect();
    if fitted.trend {
        widths.push(Constraint::Length(columns::TREND_WIDTH));
    }
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
