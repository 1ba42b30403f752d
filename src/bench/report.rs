//! What a bench run found: sections of figures, printed as tables for people or as JSON for
//! machines. A figure carries its own baseline, the peer's figure and the goal, so every ratio
//! is printed next to the numbers it was computed from.

use serde::Serialize;
use std::fmt::Write;

/// One measured quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub measure: String,
    pub value: f64,
    /// `ms`, `/s`, `MiB`, `s`, `×` or empty for counts.
    pub unit: &'static str,
    /// Replaces the number when printed (per-server counts, lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The same quantity measured without the service, in the same unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// `value / baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// bbblb's figure from peer-figures.md, as written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// How many times better than bbblb (above 1 is better), where the two compare directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub better_than_peer: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

impl Figure {
    pub fn new(measure: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            measure: measure.into(),
            value,
            unit,
            text: None,
            baseline: None,
            ratio: None,
            peer: None,
            better_than_peer: None,
            goal: None,
            met: None,
        }
    }

    /// A figure that is best read as text; `value` still carries a number for machines.
    pub fn text(measure: impl Into<String>, value: f64, text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::new(measure, value, "")
        }
    }

    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self.ratio = (baseline > 0.0).then(|| self.value / baseline);
        self
    }

    pub fn peer(mut self, peer: &str, better_than_peer: Option<f64>) -> Self {
        self.peer = Some(peer.to_owned());
        self.better_than_peer = better_than_peer;
        self
    }

    pub fn goal(mut self, goal: &str, met: bool) -> Self {
        self.goal = Some(goal.to_owned());
        self.met = Some(met);
        self
    }
}

/// One table: a scenario under one set of conditions.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// The scenario's `--only` name.
    pub scenario: &'static str,
    pub title: String,
    /// Emulated BBB latency in milliseconds.
    pub latency_ms: u64,
    /// What else sets this table apart (ensure TTL, concurrency, fleet).
    pub conditions: String,
    pub figures: Vec<Figure>,
    /// Highest resident set size of the bench process while this section ran.
    pub peak_rss_mib: f64,
}

/// The machine a run measured on, since figures mean little without it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub build: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub database: &'static str,
    pub quick: bool,
    /// What the CPU and RSS figures include.
    pub notes: Vec<String>,
    pub sections: Vec<Section>,
    pub peak_rss_mib: f64,
}

/// Three significant digits, without trailing noise for whole counts.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    if value == value.trunc() && value.abs() < 1e9 {
        return format!("{value:.0}");
    }
    let magnitude = if value == 0.0 {
        0
    } else {
        value.abs().log10().floor() as i32
    };
    let decimals = (2 - magnitude).clamp(0, 4) as usize;
    format!("{value:.decimals$}")
}

fn with_unit(value: f64, unit: &str) -> String {
    match unit {
        "" => number(value),
        "×" => format!("{}×", number(value)),
        "/s" => format!("{}/s", number(value)),
        _ => format!("{} {unit}", number(value)),
    }
}

impl Figure {
    fn cells(&self) -> [String; 7] {
        let value = self
            .text
            .clone()
            .unwrap_or_else(|| with_unit(self.value, self.unit));
        let goal = match (&self.goal, self.met) {
            (Some(goal), Some(true)) => format!("{goal}  met"),
            (Some(goal), Some(false)) => format!("{goal}  MISSED"),
            (Some(goal), None) => goal.clone(),
            (None, _) => String::new(),
        };
        [
            self.measure.clone(),
            value,
            self.baseline
                .map(|b| with_unit(b, self.unit))
                .unwrap_or_default(),
            self.ratio
                .map(|r| format!("{}×", number(r)))
                .unwrap_or_default(),
            self.peer.clone().unwrap_or_default(),
            self.better_than_peer
                .map(|r| format!("{}×", number(r)))
                .unwrap_or_default(),
            goal,
        ]
    }
}

const HEADER: [&str; 7] = [
    "measure",
    "value",
    "baseline",
    "÷ baseline",
    "bbblb",
    "better than bbblb",
    "goal",
];

fn table(out: &mut String, rows: &[[String; 7]]) {
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(" ");
        for (cell, width) in row.iter().zip(widths) {
            let pad = width - cell.chars().count();
            let _ = write!(line, " {cell}{}  ", " ".repeat(pad));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

impl Report {
    pub fn text(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "eventyay-bbb bench: {} cores ({}), {:.0} GiB, Linux {}, {} build, {}{}",
            m.cores,
            m.cpu,
            m.memory_gib,
            m.kernel,
            m.build,
            self.database,
            if self.quick {
                ", --quick (short runs: figures are rough)"
            } else {
                ""
            }
        );
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        for section in &self.sections {
            let _ = writeln!(
                out,
                "\n== {} — BBB latency {} ms{}{} (peak RSS {} MiB)",
                section.title,
                section.latency_ms,
                if section.conditions.is_empty() {
                    ""
                } else {
                    ", "
                },
                section.conditions,
                number(section.peak_rss_mib),
            );
            let rows: Vec<_> = section.figures.iter().map(Figure::cells).collect();
            table(&mut out, &rows);
        }
        let _ = writeln!(
            out,
            "\nPeak RSS of the bench process over the whole run: {} MiB",
            number(self.peak_rss_mib)
        );
        out
    }
}

/// A burst's first-join p50 and p99 against its baseline's, and its failures (goal: none).
pub fn first_joins(
    samples: &super::measure::Samples,
    baseline: &super::measure::Samples,
    errors: usize,
) -> [Figure; 3] {
    [
        Figure::new("first join p50", samples.percentile_ms(0.5), "ms")
            .baseline(baseline.percentile_ms(0.5)),
        Figure::new("first join p99", samples.percentile_ms(0.99), "ms")
            .baseline(baseline.percentile_ms(0.99)),
        Figure::new("failed first joins", errors as f64, "").goal("0", errors == 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(number(0.41234), "0.412");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1234.4), "1234");
        assert_eq!(number(20.0), "20");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "-");
    }

    #[test]
    fn ratios_follow_the_baseline() {
        let f = Figure::new("p50", 2.0, "ms").baseline(4.0);
        assert_eq!(f.ratio, Some(0.5));
        assert_eq!(Figure::new("x", 1.0, "").baseline(0.0).ratio, None);
        let cells = Figure::new("p99", 3.0, "ms")
            .baseline(2.0)
            .goal("≤ 2× baseline", true)
            .cells();
        assert_eq!(cells[1], "3 ms");
        assert_eq!(cells[3], "1.50×");
        assert!(cells[6].ends_with("met"));
    }
}
