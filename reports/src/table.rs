//! A table of results, built once and written two ways: as text for terminals (drawn by
//! `comfy-table`) and as Markdown for reports, so both always say the same thing.

use comfy_table::{CellAlignment, ContentArrangement, LineStyle, TableStyle};

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table: a header and rows of cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

/// The terminal look: no borders, one rule under the header, columns two spaces apart.
/// Lines start with the first cell, so `grep '^token-bucket'` finds a row.
const TERMINAL: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            headers: columns.iter().map(|(h, _)| (*h).to_owned()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left blank, extra cells dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// Adds a column at the end, one value per existing row (blank when short).
    pub fn push_column(&mut self, header: &str, align: Align, values: Vec<String>) {
        self.headers.push(header.to_owned());
        self.align.push(align);
        let mut values = values.into_iter();
        for row in &mut self.rows {
            row.push(values.next().unwrap_or_default());
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Aligned plain text for a terminal: never wrapped to the terminal's width (a row
    /// stays one line, for `grep` and pipes), no trailing spaces, a final newline.
    pub fn to_text(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_style(TERMINAL)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(self.headers.clone())
            .add_rows(self.rows.clone());
        let last = self.headers.len().saturating_sub(1);
        for (c, column) in t.column_iter_mut().enumerate() {
            column.set_padding((0, if c == last { 0 } else { 1 }));
            column.set_cell_alignment(match self.align[c] {
                Align::Left => CellAlignment::Left,
                Align::Right => CellAlignment::Right,
            });
        }
        let mut out = t.trim_fmt();
        out.push('\n');
        out
    }

    /// A GitHub-flavoured Markdown table (`|` in a cell escaped).
    pub fn to_markdown(&self) -> String {
        let line = |cells: &mut dyn Iterator<Item = String>| {
            format!("| {} |\n", cells.collect::<Vec<_>>().join(" | "))
        };
        let esc = |s: &String| s.replace('|', "\\|");
        let mut out = line(&mut self.headers.iter().map(esc));
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for row in &self.rows {
            out.push_str(&line(&mut row.iter().map(esc)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_markdown() {
        let mut t = Table::new(&[("name", Align::Left), ("n", Align::Right)]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["long|name".into(), "1,000".into()]);
        assert_eq!(
            t.to_text(),
            "name           n\n────────────────\na              1\nlong|name  1,000\n"
        );
        assert_eq!(
            t.to_markdown(),
            "| name | n |\n|---|---:|\n| a | 1 |\n| long\\|name | 1,000 |\n"
        );
        t.push_column("x", Align::Left, vec!["y".into()]);
        assert!(
            t.to_text()
                .starts_with("name           n  x\n───────────────────\na              1  y\n"),
            "{}",
            t.to_text()
        );
    }

    #[test]
    fn a_long_row_is_never_wrapped() {
        let mut t = Table::new(&[("a", Align::Left), ("b", Align::Left)]);
        t.row(vec!["x".repeat(300), "y".repeat(300)]);
        assert_eq!(t.to_text().lines().count(), 3);
    }
}
