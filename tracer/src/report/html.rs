//! Small helpers for writing HTML by hand: escaping, and tables.

use std::fmt::Write as _;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for text and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a command name can hold them) as symbols.
            c if c.is_control() => {
                let _ = write!(out, "&#x{:x};", 0x2400 + (c as u32 & 0x1f));
            }
            c => out.push(c),
        }
    }
    out
}

/// A table: a header row, then rows of cells that are already HTML.
pub struct Table {
    html: String,
}

impl Table {
    /// `headers` are plain text; a header starting with `#` is right-aligned
    /// (a column of numbers), without the `#`.
    pub fn new(headers: &[&str]) -> Self {
        // Wrapped so a wide table scrolls on its own instead of the page.
        let mut html = String::from("<div class=wide><table><thead><tr>");
        for h in headers {
            match h.strip_prefix('#') {
                Some(h) => {
                    let _ = write!(html, "<th class=n>{}</th>", escape(h));
                }
                None => {
                    let _ = write!(html, "<th>{}</th>", escape(h));
                }
            }
        }
        html.push_str("</tr></thead><tbody>");
        Self { html }
    }

    /// One row; a cell starting with `#` is a right-aligned number.
    pub fn row(&mut self, cells: &[String]) {
        self.html.push_str("<tr>");
        for cell in cells {
            match cell.strip_prefix('#') {
                Some(cell) => {
                    let _ = write!(self.html, "<td class=n>{cell}</td>");
                }
                None => {
                    let _ = write!(self.html, "<td>{cell}</td>");
                }
            }
        }
        self.html.push_str("</tr>");
    }

    pub fn finish(mut self) -> String {
        self.html.push_str("</tbody></table></div>");
        self.html
    }
}

/// The page's style: readable without any script or external file.
pub const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}\
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}\
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.n{text-align:right;font-variant-numeric:tabular-nums}\
.critical{color:#fff;background:#c0392b;padding:0 .4em;border-radius:3px;white-space:nowrap}\
.warning{color:#222;background:#f1c40f;padding:0 .4em;border-radius:3px;white-space:nowrap}\
section.process{margin:1.5em 0;border-top:1px solid #ccc}\
section.process svg{max-width:100%;height:auto}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#555}dd{margin:0}\
.note{color:#666;font-size:.9em}.wide{overflow-x:auto}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("a\tb\n"), "a&#x2409;b&#x240a;");
    }

    #[test]
    fn tables() {
        let mut t = Table::new(&["name", "#count"]);
        t.row(&["x".into(), "#3".into()]);
        assert_eq!(
            t.finish(),
            "<div class=wide><table><thead><tr><th>name</th><th class=n>count</th></tr></thead>\
             <tbody><tr><td>x</td><td class=n>3</td></tr></tbody></table></div>"
        );
    }
}
