//! The words of a rule: its thresholds as people read them, and the small
//! template language of [`Rule`]'s texts (`{NAME}` is a slot: a threshold's
//! name, or `server`/`remote` for the endpoint in a headline).

use std::{fmt, time::Duration};

use super::Rule;

/// A threshold's value, with the unit it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// `5,000`
    Count(u64),
    /// `80 %`
    Percent(u64),
    /// `30 s`
    Age(Duration),
    /// `64 KiB`
    Bytes(u64),
    /// `250 ms`, `2 s`
    Latency(Duration),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => f.write_str(&grouped(*n)),
            Self::Percent(n) => write!(f, "{n} %"),
            Self::Age(d) => write!(f, "{} s", d.as_secs()),
            Self::Bytes(n) => f.write_str(&crate::human::bytes(*n)),
            Self::Latency(d) if d.as_millis() < 1000 => write!(f, "{} ms", d.as_millis()),
            Self::Latency(d) => write!(f, "{} s", d.as_secs()),
        }
    }
}

/// `5000` as `5,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One threshold of a rule, named as its constant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub name: &'static str,
    pub value: Value,
}

/// A piece of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    /// `{name}`, without the braces.
    Slot(&'a str),
}

/// The pieces of `template`, in order.
pub fn parts(template: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            out.push(Part::Text(&rest[..open]));
        }
        out.push(Part::Slot(&rest[open + 1..open + len]));
        rest = &rest[open + len + 1..];
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest));
    }
    out
}

/// `template` with each slot replaced by what `slot` gives for its name; a
/// slot it gives nothing for stays as written.
pub fn fill(template: &str, slot: impl Fn(&str) -> Option<String>) -> String {
    parts(template)
        .into_iter()
        .map(|part| match part {
            Part::Text(text) => text.to_owned(),
            Part::Slot(name) => slot(name).unwrap_or_else(|| format!("{{{name}}}")),
        })
        .collect()
}

impl Rule {
    /// The threshold named `name`, as written.
    fn threshold(&self, name: &str) -> Option<String> {
        self.thresholds
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.value.to_string())
    }

    /// When the rule fires, with its thresholds filled in.
    pub fn fires_when_text(&self) -> String {
        fill(self.fires_when, |name| self.threshold(name))
    }

    /// How severe its findings are, with its thresholds filled in.
    pub fn severity_text(&self) -> String {
        fill(self.severity, |name| self.threshold(name))
    }

    /// The headline's pieces; its slots name the endpoint.
    pub fn headline_parts(&self) -> Vec<Part<'static>> {
        parts(self.headline)
    }
}
