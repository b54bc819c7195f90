//! The handshake-latency histogram: one bar per log-scale bucket, the
//! buckets holding p50 and p99 marked and coloured.

use ratatui::{
    style::{Color, Style},
    text::{Line, Span},
};

use super::style;
use crate::{human, snapshot::Latency};

const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/// Lines of the chart for `width`×`height` cells, the summary line last.
pub fn lines(latency: &Latency, width: u16, height: u16) -> Vec<Line<'static>> {
    if latency.is_empty() {
        return vec![Line::styled("no completed handshakes yet", style::dim())];
    }
    let summary = Line::from(vec![
        Span::styled("p50 ", style::dim()),
        Span::styled(human::micros(latency.p50), p50()),
        Span::styled("  p99 ", style::dim()),
        Span::styled(human::micros(latency.p99), p99()),
        Span::styled("  max ", style::dim()),
        Span::raw(human::micros(latency.max)),
    ]);
    let rows = usize::from(height.saturating_sub(1)).max(1);
    let buckets = fold(trimmed(&latency.buckets), rows);
    let label_width = buckets
        .iter()
        .map(|b| human::micros(b.0).chars().count() + 1)
        .max()
        .unwrap_or(0);
    let count_width = buckets
        .iter()
        .map(|b| human::count(b.1).len())
        .max()
        .unwrap_or(0);
    const MARK: usize = 10; // " ◀ p50 p99"
    let bar_width = usize::from(width).saturating_sub(label_width + 1 + count_width + 1 + MARK);
    let most = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let mut out: Vec<Line<'static>> = buckets
        .iter()
        .enumerate()
        .map(|(i, &(upper, n))| {
            let lower = if i == 0 { 0 } else { buckets[i - 1].0 };
            let has = |q: u64| q > lower && q <= upper;
            let (bar_style, mark) = match (has(latency.p50), has(latency.p99)) {
                (true, true) => (p99(), " ◀ p50 p99"),
                (true, false) => (p50(), " ◀ p50"),
                (false, true) => (p99(), " ◀ p99"),
                (false, false) => (Style::new().fg(Color::Cyan), ""),
            };
            Line::from(vec![
                Span::styled(
                    format!("{:>label_width$} ", format!("≤{}", human::micros(upper))),
                    style::dim(),
                ),
                Span::styled(bar(n, most, bar_width), bar_style),
                Span::raw(format!(" {:>count_width$}", human::count(n))),
                Span::styled(mark, bar_style),
            ])
        })
        .collect();
    out.push(summary);
    out
}

fn p50() -> Style {
    Style::new().fg(Color::Yellow)
}

fn p99() -> Style {
    Style::new().fg(Color::Red)
}

/// A bar of `n / most` of `width` cells, in eighths, padded to `width`.
fn bar(n: u64, most: u64, width: usize) -> String {
    let eighths = (n as u128 * width as u128 * 8 / most as u128) as usize;
    let mut s = "█".repeat(eighths / 8);
    s.push_str(EIGHTHS[eighths % 8]);
    if n > 0 && eighths == 0 && width > 0 {
        s.push('▏');
    }
    let len = s.chars().count();
    s + &" ".repeat(width.saturating_sub(len))
}

/// The buckets from the first to the last non-empty one.
fn trimmed(buckets: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let first = buckets.iter().position(|b| b.1 > 0);
    let last = buckets.iter().rposition(|b| b.1 > 0);
    match (first, last) {
        (Some(f), Some(l)) => buckets[f..=l].to_vec(),
        _ => Vec::new(),
    }
}

/// Merges neighbouring buckets pairwise until at most `rows` remain.
fn fold(mut buckets: Vec<(u64, u64)>, rows: usize) -> Vec<(u64, u64)> {
    while buckets.len() > rows.max(1) {
        buckets = buckets
            .chunks(2)
            .map(|pair| (pair[pair.len() - 1].0, pair.iter().map(|b| b.1).sum()))
            .collect();
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn bars_scale_in_eighths() {
        assert_eq!(bar(8, 8, 4), "████");
        assert_eq!(bar(1, 8, 4), "▌   ");
        assert_eq!(bar(1, 1000, 4), "▏   ", "non-zero is visible");
        assert_eq!(bar(0, 8, 4), "    ");
    }

    #[test]
    fn folding_keeps_counts_and_bounds() {
        let b = vec![(1, 1), (2, 2), (4, 3), (8, 4), (16, 5)];
        assert_eq!(fold(b.clone(), 5), b);
        assert_eq!(fold(b.clone(), 3), vec![(2, 3), (8, 7), (16, 5)]);
        assert_eq!(fold(b, 1), vec![(16, 15)]);
        assert_eq!(
            trimmed(&[(1, 0), (2, 3), (4, 0), (8, 1), (16, 0)]),
            vec![(2, 3), (4, 0), (8, 1)]
        );
    }

    #[test]
    fn marks_p50_and_p99() {
        let l = fixtures::latency(&[0, 30, 900, 1_100, 150, 40, 9, 3]);
        let text: Vec<String> = lines(&l, 40, 20).iter().map(ToString::to_string).collect();
        assert_eq!(
            text.iter().filter(|l| l.contains("◀ p50")).count(),
            1,
            "{text:#?}"
        );
        assert_eq!(
            text.iter().filter(|l| l.contains("p99")).count(),
            2,
            "{text:#?}"
        );
        assert!(text.last().unwrap().starts_with("p50 "));
    }
}
