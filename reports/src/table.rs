//! Tables of results, as aligned plain text for terminals and as Markdown for reports,
//! built once from the same rows so both say the same thing.

use results::{PhaseStats, Results, Run};

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

    /// Aligned plain text, two spaces between columns, no trailing spaces.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain(std::iter::once(self.headers[c].chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                match self.align[c] {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        out.push_str(&format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        out.push_str(&format!(
            "|{}|\n",
            self.align
                .iter()
                .map(|a| match a {
                    Align::Left => "---",
                    Align::Right => "---:",
                })
                .collect::<Vec<_>>()
                .join("|")
        ));
        for row in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                row.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        out
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Seconds as a compact duration: `60s`, `1.5s`, `250ms`, `5m`, `1h`.
pub fn seconds(s: f64) -> String {
    let trim = |v: f64| {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    if s >= 3600.0 && (s / 3600.0).fract() == 0.0 {
        format!("{}h", trim(s / 3600.0))
    } else if s >= 120.0 && (s / 60.0).fract() == 0.0 {
        format!("{}m", trim(s / 60.0))
    } else if s >= 1.0 || s == 0.0 {
        format!("{}s", trim(s))
    } else if s >= 1e-3 {
        format!("{}ms", trim(s * 1e3))
    } else {
        format!("{}µs", trim(s * 1e6))
    }
}

/// Signed count of over- or under-admission, with its share of the reference:
/// `+8 (47.1%)`, `0`, `−3 (0.2%)`.
fn deviation(count: u64, of: u64, sign: char) -> String {
    if count == 0 {
        "0".to_owned()
    } else if of == 0 {
        format!("{sign}{}", thousands(count))
    } else {
        format!(
            "{sign}{} ({:.1}%)",
            thousands(count),
            count as f64 * 100.0 / of as f64
        )
    }
}

fn ratio(x: f64) -> String {
    format!("{x:.2}×")
}

fn excess(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else if x < 0.01 {
        "<0.01".to_owned()
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn fairness(f: Option<f64>) -> String {
    f.map_or_else(|| "–".to_owned(), |f| format!("{f:.3}"))
}

fn run_label(results: &Results, run: &Run) -> String {
    if results.runs.iter().any(|r| r.store != run.store) {
        format!("{} ({})", run.algorithm, run.store)
    } else {
        run.algorithm.clone()
    }
}

fn stats_cells(s: &PhaseStats) -> Vec<String> {
    vec![
        thousands(s.admitted),
        thousands(s.rejected),
        thousands(s.reference_admitted),
        deviation(s.over_admission, s.reference_admitted, '+'),
        deviation(s.under_admission, s.reference_admitted, '−'),
        excess(s.envelope_excess),
        ratio(s.burst_ratio),
    ]
}

/// The comparison of every run over the whole workload: one row per run.
pub fn summary(results: &Results) -> Table {
    let latency = results.has_latency();
    let mut columns = vec![
        ("algorithm", Align::Left),
        ("admitted", Align::Right),
        ("rejected", Align::Right),
        ("exact", Align::Right),
        ("over", Align::Right),
        ("under", Align::Right),
        ("excess", Align::Right),
        ("burst", Align::Right),
        ("fairness", Align::Right),
        ("bytes/key", Align::Right),
    ];
    if latency {
        columns.push(("p99 µs", Align::Right));
    }
    let mut t = Table::new(&columns);
    for run in &results.runs {
        let mut cells = vec![run_label(results, run)];
        cells.extend(stats_cells(&run.totals));
        cells.push(fairness(run.totals.fairness));
        cells.push(thousands(run.memory_per_key_bytes));
        if latency {
            cells.push(
                run.totals
                    .latency_us
                    .map_or_else(|| "–".to_owned(), |l| format!("{:.0}", l.p99)),
            );
        }
        t.row(cells);
    }
    t
}

/// Admitted per phase, one row per run and one column per phase: the shape of each
/// algorithm's answer over time, at a glance.
pub fn admitted_by_phase(results: &Results) -> Table {
    let mut columns: Vec<(String, Align)> = vec![("admitted by phase".to_owned(), Align::Left)];
    for p in &results.workload.phases {
        columns.push((p.name.clone(), Align::Right));
    }
    let refs: Vec<(&str, Align)> = columns.iter().map(|(h, a)| (h.as_str(), *a)).collect();
    let mut t = Table::new(&refs);
    let offered: Option<&Run> = results.runs.first();
    if let Some(run) = offered {
        let mut cells = vec!["offered".to_owned()];
        cells.extend(run.phases.iter().map(|s| thousands(s.offered)));
        t.row(cells);
    }
    let mut seen: Vec<&str> = Vec::new();
    for run in &results.runs {
        if run.reference.is_empty() || seen.contains(&run.reference.as_str()) {
            continue;
        }
        seen.push(&run.reference);
        let mut cells = vec![run.reference.clone()];
        cells.extend(run.phases.iter().map(|s| thousands(s.reference_admitted)));
        t.row(cells);
    }
    for run in &results.runs {
        let mut cells = vec![run_label(results, run)];
        cells.extend(run.phases.iter().map(|s| thousands(s.admitted)));
        t.row(cells);
    }
    t
}

/// Every figure per phase and run.
pub fn by_phase(results: &Results) -> Table {
    let latency = results.has_latency();
    let mut columns = vec![
        ("phase", Align::Left),
        ("algorithm", Align::Left),
        ("offered", Align::Right),
        ("admitted", Align::Right),
        ("rejected", Align::Right),
        ("exact", Align::Right),
        ("over", Align::Right),
        ("under", Align::Right),
        ("excess", Align::Right),
        ("burst", Align::Right),
        ("fairness", Align::Right),
    ];
    if latency {
        columns.push(("p50 µs", Align::Right));
        columns.push(("p99 µs", Align::Right));
        columns.push(("p99.9 µs", Align::Right));
    }
    let mut t = Table::new(&columns);
    let phases = results.workload.phases.len();
    for p in 0..phases {
        for run in &results.runs {
            let Some(s) = run.phases.get(p) else {
                continue;
            };
            let mut cells = vec![
                s.name.clone(),
                run_label(results, run),
                thousands(s.offered),
            ];
            cells.extend(stats_cells(s));
            cells.push(fairness(s.fairness));
            if latency {
                match s.latency_us {
                    Some(l) => cells.extend([
                        format!("{:.0}", l.p50),
                        format!("{:.0}", l.p99),
                        format!("{:.0}", l.p999),
                    ]),
                    None => cells.extend(["–", "–", "–"].map(String::from)),
                }
            }
            t.row(cells);
        }
    }
    t
}

/// The endpoints and their policies.
pub fn policies(results: &Results) -> Table {
    let mut t = Table::new(&[
        ("endpoint", Align::Left),
        ("share", Align::Right),
        ("policy", Align::Left),
        ("cost", Align::Right),
    ]);
    let total: f64 = results.workload.endpoints.iter().map(|e| e.weight).sum();
    for e in &results.workload.endpoints {
        t.row(vec![
            e.path.clone(),
            format!(
                "{:.0}%",
                if total > 0.0 {
                    e.weight * 100.0 / total
                } else {
                    0.0
                }
            ),
            format!(
                "{} per {}, bursts of {}",
                thousands(e.limit),
                seconds(e.window_s),
                thousands(e.burst)
            ),
            e.cost.to_string(),
        ]);
    }
    t
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
            "name           n\na              1\nlong|name  1,000\n"
        );
        assert_eq!(
            t.to_markdown(),
            "| name | n |\n|---|---:|\n| a | 1 |\n| long\\|name | 1,000 |\n"
        );
        t.push_column("x", Align::Left, vec!["y".into()]);
        assert!(
            t.to_text()
                .starts_with("name           n  x\na              1  y\n")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(seconds(60.0), "60s");
        assert_eq!(seconds(300.0), "5m");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(seconds(1.5), "1.5s");
        assert_eq!(seconds(3600.0), "1h");
        assert_eq!(deviation(8, 17, '+'), "+8 (47.1%)");
        assert_eq!(deviation(0, 17, '+'), "0");
        assert_eq!(excess(0.5), "0.50");
        assert_eq!(excess(10.0), "10");
    }
}
