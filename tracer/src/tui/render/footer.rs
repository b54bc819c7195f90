//! The bottom line: the filter being typed, or the last save message and the
//! keys from the key table.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::style;
use crate::tui::{keys, state::ViewState};

pub fn render(state: &ViewState, area: Rect, frame: &mut Frame<'_>) {
    frame.render_widget(Paragraph::new(line(state)), area);
}

fn line(state: &ViewState) -> Line<'static> {
    if state.editing_filter {
        return Line::from(vec![
            Span::styled("filter: ", style::title()),
            Span::raw(state.filter.clone()),
            Span::styled("▏", style::dim()),
            Span::styled("  Enter keeps it · Esc clears it", style::dim()),
        ]);
    }
    let mut spans = Vec::new();
    if let Some(status) = &state.status {
        let s = if status.error {
            style::bad()
        } else {
            style::title()
        };
        spans.push(Span::styled(status.text.clone(), s));
        spans.push(Span::raw("  "));
    }
    for (key, word) in keys::footer() {
        spans.push(Span::styled(key, style::heading()));
        spans.push(Span::raw(format!(" {word}  ")));
    }
    Line::from(spans)
}

/// The footer as plain text, for tests.
#[cfg(test)]
pub fn text(state: &ViewState) -> String {
    line(state).to_string()
}
