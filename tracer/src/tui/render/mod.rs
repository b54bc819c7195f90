//! Drawing the live view. Pure: [`render`] reads the view state, one snapshot
//! and the session context and draws into a frame; it does no I/O, takes no
//! locks and keeps nothing between frames.

mod detail;
mod findings;
mod footer;
mod header;
mod help;
mod histogram;
mod history;
mod processes;
mod spark;
mod table;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Wrap},
};

use super::{
    ViewContext,
    state::{Screen, ViewState},
};
use crate::{
    findings::{Finding, Severity},
    snapshot::Snapshot,
};

/// Below this the view says the terminal is too small instead of drawing.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Draws the whole screen for `snapshot` (the live one, or the paused one).
pub fn render(state: &ViewState, snapshot: &Snapshot, ctx: &ViewContext, frame: &mut Frame<'_>) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(area, frame);
        return;
    }
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(state, snapshot, ctx, header_area, frame);
    let all = crate::findings::findings(snapshot);
    match state.screen {
        Screen::Processes => processes::render(state, snapshot, &all, body, frame),
        Screen::Detail => detail::render(state, snapshot, &all, body, frame),
        Screen::Findings => findings::render_screen(state, &all, body, frame),
    }
    footer::render(state, footer_area, frame);
    if state.help {
        help::render(ctx, state.help_scroll, area, frame);
    }
}

fn too_small(area: Rect, frame: &mut Frame<'_>) {
    let text = vec![
        Line::styled("terminal too small", style::title()),
        Line::raw(format!(
            "{}×{}; the live view needs {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
        Line::raw("q quits"),
    ];
    let height = (text.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(height) / 2;
    frame.render_widget(
        Paragraph::new(text).centered().wrap(Wrap { trim: true }),
        Rect::new(area.x, y, area.width, height),
    );
}

/// A panel: a title on a top rule; returns the area inside.
fn panel(title: Line<'_>, area: Rect, frame: &mut Frame<'_>) -> Rect {
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(style::rule())
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// ` Title ` with an optional dim note after it.
fn title<'a>(name: &'a str, note: String) -> Line<'a> {
    let mut spans = vec![Span::styled(format!(" {name} "), style::title())];
    if !note.is_empty() {
        spans.push(Span::styled(format!("{note} "), style::dim()));
    }
    Line::from(spans)
}

/// The worst severity among `findings` of process `pid`.
fn worst(findings: &[Finding], pid: u32) -> Option<Severity> {
    findings
        .iter()
        .filter(|f| f.pid == pid)
        .map(|f| f.severity)
        .max()
}

/// The one palette of the view.
mod style {
    use super::{Color, Modifier, Severity, Style};

    pub fn title() -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn heading() -> Style {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn sorted_heading() -> Style {
        heading().add_modifier(Modifier::UNDERLINED | Modifier::REVERSED)
    }
    pub fn dim() -> Style {
        Style::new().fg(Color::DarkGray)
    }
    pub fn rule() -> Style {
        Style::new().fg(Color::DarkGray)
    }
    pub fn selected() -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn bad() -> Style {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn() -> Style {
        severity(Severity::Warning)
    }
    pub fn paused() -> Style {
        Style::new()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    }
    pub fn severity(s: Severity) -> Style {
        match s {
            Severity::Critical => Style::new().fg(Color::Red),
            Severity::Warning => Style::new().fg(Color::Yellow),
        }
    }
    pub fn severity_tag(s: Severity) -> Style {
        severity(s).add_modifier(Modifier::BOLD)
    }
}

#[cfg(test)]
mod tests;
