//! The help popup: every entry of the key table, where the log goes, what
//! the findings check and what the columns mean.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Wrap},
};

use super::style;
use crate::tui::{ViewContext, columns, keys};

/// Width of the key names in the help.
const KEY_WIDTH: usize = 8;

pub fn render(ctx: &ViewContext, scroll: u16, area: Rect, frame: &mut Frame<'_>) {
    let width = area.width.saturating_sub(4).min(96);
    let lines = lines(ctx, width.saturating_sub(2));
    let height = (lines.len() as u16 + 2).min(area.height);
    // Scrolling stops when the last line is visible.
    let scroll = scroll.min((lines.len() as u16 + 2).saturating_sub(height));
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(
                Block::bordered()
                    .border_style(style::rule())
                    .title(Span::styled(
                        " Help · ↑↓ scroll · ? or Esc closes ",
                        style::title(),
                    )),
            ),
        popup,
    );
}

pub fn lines(ctx: &ViewContext, width: u16) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    // The key table in two columns when there is room for them.
    let entries: Vec<(String, &str)> = keys::BINDINGS
        .iter()
        .map(|b| (keys::names(b), b.help))
        .collect();
    let column = KEY_WIDTH + 1 + entries.iter().map(|e| e.1.len()).max().unwrap_or(0) + 2;
    let per_line = if usize::from(width) >= 2 * column {
        2
    } else {
        1
    };
    for chunk in entries.chunks(per_line) {
        let mut spans = Vec::new();
        for (keys, help) in chunk {
            spans.push(Span::styled(
                format!("{keys:<KEY_WIDTH$} "),
                style::heading(),
            ));
            spans.push(Span::raw(format!("{help:<w$}", w = column - KEY_WIDTH - 1)));
        }
        out.push(Line::from(spans));
    }
    out.push(Line::raw(""));
    let notes = [
        "Counts are totals since tracer started; /s columns are per second, last interval.",
        "Red or yellow rows have a finding (f lists them with their numbers); grey: exited.",
        "While typing a filter, Enter keeps it and Esc clears it.",
    ];
    out.extend(notes.iter().map(|n| Line::raw(*n)));
    let log = match &ctx.log_path {
        Some(p) => format!("Log messages go to {} while the view runs.", p.display()),
        None => "Log messages are discarded while the view runs.".to_owned(),
    };
    out.push(Line::styled(log, style::dim()));
    out.push(Line::styled(
        format!("Hooks in use: {}", ctx.hooks),
        style::dim(),
    ));
    out.push(Line::raw(""));
    out.push(Line::styled(
        "Findings and their thresholds",
        style::title(),
    ));
    out.extend(
        crate::findings::rules()
            .into_iter()
            .map(|r| Line::from(vec![Span::raw("  "), Span::raw(r)])),
    );
    out.push(Line::raw(""));
    out.push(Line::styled("Columns", style::title()));
    // Column legend, last: on a short terminal it is what gets cut.
    let legend: Vec<(String, &str)> = columns::ALL
        .iter()
        .map(|c| (c.heading().to_owned(), c.meaning()))
        .collect();
    let column = 8 + 1 + legend.iter().map(|e| e.1.len()).max().unwrap_or(0) + 2;
    let per_line = if usize::from(width) >= 2 * column {
        2
    } else {
        1
    };
    for chunk in legend.chunks(per_line) {
        let mut spans = Vec::new();
        for (heading, meaning) in chunk {
            spans.push(Span::styled(format!("{heading:<8} "), style::heading()));
            spans.push(Span::raw(format!("{meaning:<w$}", w = column - 9)));
        }
        out.push(Line::from(spans));
    }
    out
}
