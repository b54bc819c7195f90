//! The help popup: every entry of the key table, where the log goes, what
//! the findings check (the rule table) and what the columns mean.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Wrap},
};

use super::style;
use crate::{
    findings::{self, Part, Rule},
    tui::{ViewContext, columns, keys},
};

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

/// Indent of a finding rule, and of the lines it wraps onto.
const RULE_INDENT: usize = 2;
const RULE_HANG: usize = 6;

/// One finding rule wrapped to `width`: its headline (the endpoint in
/// italics), when it fires and how severe it is, all from the rule table.
/// A number stays on the line of the word after it ("30 s", "≥ 10 sockets").
fn rule(rule: &Rule, width: usize) -> Vec<Line<'static>> {
    let italic = Style::new().add_modifier(Modifier::ITALIC);
    // Words, each one or more spans: the endpoint slot can touch a colon.
    let mut words: Vec<Vec<Span<'static>>> = vec![Vec::new()];
    let mut push = |text: &str, style: Style| {
        for (i, piece) in text.split(' ').enumerate() {
            if i > 0 {
                words.push(Vec::new());
            }
            if let (false, Some(word)) = (piece.is_empty(), words.last_mut()) {
                word.push(Span::styled(piece.to_owned(), style));
            }
        }
    };
    for part in rule.headline_parts() {
        match part {
            Part::Text(text) => push(text, Style::new()),
            Part::Slot(name) => push(name, italic),
        }
    }
    let rest = format!(": {}; {}", rule.fires_when_text(), rule.severity_text());
    push(&rest, Style::new());
    // Groups of words that stay on one line.
    let mut groups: Vec<Vec<Vec<Span<'static>>>> = Vec::new();
    let mut glue = false;
    for word in words.into_iter().filter(|w| !w.is_empty()) {
        let text: String = word.iter().map(|s| s.content.as_ref()).collect();
        match groups.last_mut() {
            Some(group) if glue => group.push(word),
            _ => groups.push(vec![word]),
        }
        glue = text == "≥" || text.chars().all(|c| c.is_ascii_digit() || c == ',');
    }
    let len = |words: &[Vec<Span<'_>>]| -> usize {
        let chars: usize = words
            .iter()
            .flatten()
            .map(|s| s.content.chars().count())
            .sum();
        chars + words.len().saturating_sub(1)
    };
    let mut lines: Vec<Vec<Span<'static>>> = vec![vec![Span::raw(" ".repeat(RULE_INDENT))]];
    let mut used = RULE_INDENT;
    let mut empty = true;
    for group in groups {
        let need = len(&group) + usize::from(!empty);
        if !empty && used + need > width {
            lines.push(vec![Span::raw(" ".repeat(RULE_HANG))]);
            used = RULE_HANG;
            empty = true;
        }
        let Some(line) = lines.last_mut() else {
            break;
        };
        for word in group {
            if !empty {
                line.push(Span::raw(" "));
                used += 1;
            }
            used += len(std::slice::from_ref(&word));
            line.extend(word);
            empty = false;
        }
    }
    lines.into_iter().map(Line::from).collect()
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
        "TREND (wide terminals) and a process's History: the last 10 minutes; ▲ a finding started.",
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
    for r in findings::RULES {
        out.extend(rule(r, usize::from(width)));
    }
    out.push(Line::raw(""));
    out.push(Line::styled("Columns", style::title()));
    // Column legend, last: on a short terminal it is what gets cut.
    let legend: Vec<(String, &str)> = columns::ALL
        .iter()
        .map(|c| (c.heading().to_owned(), c.meaning()))
        .chain([(columns::TREND_HEADING.to_owned(), columns::TREND_MEANING)])
        .collect();
    let name = legend.iter().map(|e| e.0.len()).max().unwrap_or(0);
    let column = name + 1 + legend.iter().map(|e| e.1.len()).max().unwrap_or(0) + 2;
    let per_line = if usize::from(width) >= 2 * column {
        2
    } else {
        1
    };
    for chunk in legend.chunks(per_line) {
        let mut spans = Vec::new();
        for (heading, meaning) in chunk {
            spans.push(Span::styled(format!("{heading:<name$} "), style::heading()));
            spans.push(Span::raw(format!("{meaning:<w$}", w = column - name - 1)));
        }
        out.push(Line::from(spans));
    }
    out
}
