//! Sparklines as text, so they fit in a table cell or a line of the header:
//! a window of samples squeezed into a few characters.

/// Bars from a present zero (`▁`) to the largest value (`█`); a blank where
/// there was no sample.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` (oldest first, `None` where nothing was seen) in `width`
/// characters: each character is the largest value of the slots it covers,
/// scaled to the largest value of all. A window shorter than `width` is
/// drawn one character a slot, right-aligned.
pub fn line(values: &[Option<f32>], width: usize) -> String {
    let buckets = buckets(values, width);
    let max = buckets.iter().flatten().fold(0.0_f32, |m, &v| m.max(v));
    let mut out = " ".repeat(width.saturating_sub(buckets.len()));
    out.extend(buckets.iter().map(|b| match *b {
        None => ' ',
        Some(v) => bar(v, max),
    }));
    out
}

/// Which character `column` of `width` falls on for slot `slot` of `slots`:
/// where [`line`] draws it.
pub fn column_of(slot: usize, slots: usize, width: usize) -> usize {
    if slots <= width {
        width - slots + slot
    } else {
        slot * width / slots
    }
}

fn buckets(values: &[Option<f32>], width: usize) -> Vec<Option<f32>> {
    let n = values.len();
    if n <= width {
        return values.to_vec();
    }
    (0..width)
        .map(|i| {
            values[i * n / width..(i + 1) * n / width]
                .iter()
                .flatten()
                .copied()
                .fold(None, |m: Option<f32>, v| Some(m.map_or(v, |m| m.max(v))))
        })
        .collect()
}

fn bar(v: f32, max: f32) -> char {
    if v <= 0.0 || max <= 0.0 || !v.is_finite() {
        return BARS[0];
    }
    // Anything above zero stands above the zero bar.
    let level = (v / max * 7.0).ceil().clamp(1.0, 7.0) as usize;
    BARS[level]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_character_a_slot_when_there_is_room() {
        let v = [None, Some(0.0), Some(1.0), Some(7.0)];
        assert_eq!(line(&v, 6), "   ▁▂█");
        assert_eq!(column_of(1, 4, 6), 3);
    }

    #[test]
    fn squeezed_by_the_largest_of_each_group() {
        let mut v = vec![Some(0.0); 60];
        v[59] = Some(10.0);
        v[10] = Some(5.0);
        assert_eq!(line(&v, 6), "▁▅▁▁▁█");
        assert_eq!(column_of(59, 60, 6), 5);
        assert_eq!(column_of(10, 60, 6), 1);
        let gaps = vec![None; 60];
        assert_eq!(line(&gaps, 4), "    ");
    }

    #[test]
    fn flat_and_empty_lines() {
        assert_eq!(line(&[Some(3.0); 3], 3), "███");
        assert_eq!(line(&[Some(0.0); 3], 3), "▁▁▁");
        assert_eq!(line(&[], 3), "   ");
        assert_eq!(line(&[Some(1.0)], 0), "");
    }
}
