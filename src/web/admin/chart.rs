//! Server-rendered SVG line charts: geometry computed here, drawn by the template.

use crate::operators::stats::Series;

pub struct Line {
    pub name: &'static str,
    pub color: &'static str,
    pub points: String,
    pub total: i64,
}

pub struct Chart {
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub lines: Vec<Line>,
    /// (x, label) under the axis.
    pub x_labels: Vec<(f64, String)>,
    /// (y, value) grid lines.
    pub y_ticks: Vec<(f64, i64)>,
    pub left: f64,
    pub right: f64,
    pub bottom: f64,
}

const COLORS: [(&str, &str); 5] = [
    ("signups", "#3b5bdb"),
    ("confirmations", "#2b8a3e"),
    ("unsubscribes", "#e8590c"),
    ("sent", "#7048e8"),
    ("failed", "#c92a2a"),
];

/// A round axis maximum, four grid steps of 1, 2, 2.5 or 5 times a power of ten.
fn nice_max(v: i64) -> i64 {
    let v = v.max(4) as f64;
    let base = 10f64.powf((v / 4.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|s| s * 4.0 >= v)
        .unwrap_or(10.0 * base);
    (step * 4.0).round() as i64
}

pub fn line_chart(title: &str, series: &Series, metrics: &[&'static str]) -> Chart {
    let (width, height) = (720u32, 240u32);
    let (left, right, top, bottom) = (48.0, width as f64 - 28.0, 12.0, height as f64 - 28.0);
    let n = series.days.len().max(1);
    let max =
        metrics.iter().filter_map(|m| series.values.get(m)).flatten().copied().max().unwrap_or(0);
    let y_max = nice_max(max);
    let x = |i: usize| left + (right - left) * if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
    let y = |v: i64| bottom - (bottom - top) * v as f64 / y_max as f64;
    let lines = metrics
        .iter()
        .map(|m| {
            let values = series.values.get(m).cloned().unwrap_or_default();
            let points = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                .collect::<Vec<_>>()
                .join(" ");
            let color = COLORS.iter().find(|(k, _)| k == m).map(|c| c.1).unwrap_or("#555");
            Line { name: m, color, points, total: values.iter().sum() }
        })
        .collect();
    let every = (n / 6).max(1);
    let x_labels = series
        .days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == n - 1)
        .map(|(i, d)| (x(i), d.format("%b %-d").to_string()))
        .collect();
    let y_ticks = (0..=4).map(|k| (y(y_max * k / 4), y_max * k / 4)).collect();
    Chart { title: title.into(), width, height, lines, x_labels, y_ticks, left, right, bottom }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::collections::HashMap;

    #[test]
    fn scales_and_places_points() {
        let days: Vec<NaiveDate> =
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap().iter_days().take(3).collect();
        let values = HashMap::from([("sent", vec![0, 10, 20]), ("failed", vec![0, 0, 1])]);
        let chart = line_chart("t", &Series { days, values }, &["sent", "failed"]);
        assert_eq!(chart.y_ticks.last().unwrap().1, 20);
        assert_eq!(chart.lines[0].points.split(' ').count(), 3);
        assert_eq!(chart.lines[0].total, 30);
        assert!(chart.lines[0].points.starts_with("48.0,212.0"));
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(95), 100);
    }
}
