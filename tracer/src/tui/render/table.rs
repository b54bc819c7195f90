//! Tables whose columns drop out, least important first, when the terminal is
//! narrow, instead of squeezing every cell into truncation.

use ratatui::{
    layout::Constraint,
    style::Style,
    text::Line,
    widgets::{Cell, Row, Table},
};

use super::style;
use crate::tui::columns::fit;

/// One column of a detail table.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub heading: &'static str,
    pub width: u16,
    /// 0 is always kept; higher goes first.
    pub priority: u8,
    /// Right-aligned (numbers).
    pub right: bool,
}

pub const fn text(heading: &'static str, width: u16, priority: u8) -> Col {
    Col {
        heading,
        width,
        priority,
        right: false,
    }
}

pub const fn number(heading: &'static str, width: u16, priority: u8) -> Col {
    Col {
        heading,
        width,
        priority,
        right: true,
    }
}

/// A table of `cols` (those that fit `width`) and `rows` of cell texts; each
/// row carries its own style.
pub fn build(cols: &[Col], width: u16, rows: Vec<(Vec<String>, Style)>) -> Table<'static> {
    let keep = fit(
        &cols
            .iter()
            .map(|c| (c.width, c.priority))
            .collect::<Vec<_>>(),
        width,
    );
    let cell = |c: &Col, text: String| {
        if c.right {
            Cell::new(Line::from(text).right_aligned())
        } else {
            Cell::new(text)
        }
    };
    let header = Row::new(
        keep.iter()
            .map(|&i| cell(&cols[i], cols[i].heading.to_owned()))
            .collect::<Vec<_>>(),
    )
    .style(style::heading());
    let body: Vec<Row<'static>> = rows
        .into_iter()
        .map(|(mut texts, row_style)| {
            let cells: Vec<Cell<'static>> = keep
                .iter()
                .map(|&i| cell(&cols[i], std::mem::take(&mut texts[i])))
                .collect();
            Row::new(cells).style(row_style)
        })
        .collect();
    let widths: Vec<Constraint> = keep
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            // The last column takes what is left.
            if n + 1 == keep.len() && !cols[i].right {
                Constraint::Min(cols[i].width)
            } else {
                Constraint::Length(cols[i].width)
            }
        })
        .collect();
    Table::new(body, widths).header(header).column_spacing(1)
}
