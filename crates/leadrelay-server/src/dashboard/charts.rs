//! Charts drawn on the server as inline SVG: no script, no library, nothing a CSP must allow.
//! Each chart names itself for screen readers (`role="img"` with a title and a description)
//! and is followed by its numbers as a table, so no figure is only a picture.

use maud::{Markup, html};

/// Series colours, dark enough against white for thin bars; the legend draws its swatches
/// with the same values.
const COLOURS: [&str; 6] = ["#0b5cad", "#b35c00", "#17602c", "#7a2e8e", "#a4121c", "#4d5560"];

/// The drawing widths, in CSS pixels: a chart is never drawn larger than this (the stylesheet
/// caps it), so its 13 px text stays 13 px on a desktop and shrinks only on a phone.
const BARS_WIDTH: f64 = 420.0;
const DAYS_WIDTH: f64 = 560.0;
const LABEL_WIDTH: f64 = 100.0;
const ROW: f64 = 24.0;

/// Horizontal bars, one per `(label, value)`: a funnel, a histogram. `key` and `unit` head the
/// two columns of its numbers.
pub fn bars(id: &str, title: &str, key: &str, unit: &str, rows: &[(String, u64)]) -> Markup {
    let max = rows.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let height = ROW * rows.len() as f64 + 8.0;
    let span = BARS_WIDTH - LABEL_WIDTH - 50.0;
    let desc = rows.iter().map(|(l, v)| format!("{l}: {v}")).collect::<Vec<_>>().join(", ");
    html! {
        figure {
            svg.chart.bars role="img" aria-labelledby={ (id) "-t " (id) "-d" } viewBox={ "0 0 " (BARS_WIDTH) " " (height) } {
                title #{ (id) "-t" } { (title) }
                desc #{ (id) "-d" } { (desc) }
                @for (i, (label, value)) in rows.iter().enumerate() {
                    @let y = ROW * i as f64 + 4.0;
                    @let w = (*value as f64 / max * span).max(if *value > 0 { 2.0 } else { 0.0 });
                    text x=(LABEL_WIDTH - 8.0) y=(y + 16.0) text-anchor="end" { (label) }
                    rect x=(LABEL_WIDTH) y=(y + 3.0) width=(format!("{w:.1}")) height=(ROW - 8.0) fill=(COLOURS[0]) {}
                    text x=(LABEL_WIDTH + w + 6.0) y=(y + 16.0) { (value) }
                }
            }
            figcaption { (title) }
        }
        (table(title, &[key, unit], &rows.iter().map(|(l, v)| vec![l.clone(), v.to_string()]).collect::<Vec<_>>()))
    }
}

/// Columns per day, stacked by series: leads per day by source, by action.
pub fn stacked_days(id: &str, title: &str, days: &[String], series: &[(String, Vec<u64>)]) -> Markup {
    let totals: Vec<u64> =
        (0..days.len()).map(|d| series.iter().map(|(_, v)| v.get(d).copied().unwrap_or(0)).sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (height, top, bottom, left) = (220.0, 10.0, 34.0, 36.0);
    let plot = height - top - bottom;
    let step = if days.is_empty() { 0.0 } else { (DAYS_WIDTH - left - 8.0) / days.len() as f64 };
    let bar = (step * 0.7).clamp(1.0, 28.0);
    let label_every = (days.len() / 8).max(1);
    let desc = days.iter().zip(&totals).map(|(d, t)| format!("{d}: {t}")).collect::<Vec<_>>().join(", ");
    let shown: Vec<&(String, Vec<u64>)> = series.iter().take(COLOURS.len()).collect();
    let mut header: Vec<&str> = vec!["Day"];
    header.extend(shown.iter().map(|(name, _)| name.as_str()));
    header.push("All");
    let rows: Vec<Vec<String>> = days
        .iter()
        .enumerate()
        .map(|(d, day)| {
            let mut row = vec![day.clone()];
            row.extend(shown.iter().map(|(_, v)| v.get(d).copied().unwrap_or(0).to_string()));
            row.push(totals[d].to_string());
            row
        })
        .collect();
    let mut rects = Vec::new();
    let mut labels = Vec::new();
    for (d, day) in days.iter().enumerate() {
        let x = left + step * d as f64 + (step - bar) / 2.0;
        let mut y = top + plot;
        for (s, (_, values)) in shown.iter().enumerate() {
            let v = values.get(d).copied().unwrap_or(0);
            if v > 0 {
                let h = v as f64 / max * plot;
                y -= h;
                rects.push((x, y, h, COLOURS[s]));
            }
        }
        if d % label_every == 0 {
            labels.push((x + bar / 2.0, day.as_str()));
        }
    }
    html! {
        figure {
            svg.chart.days role="img" aria-labelledby={ (id) "-t " (id) "-d" } viewBox={ "0 0 " (DAYS_WIDTH) " " (height) } {
                title #{ (id) "-t" } { (title) }
                desc #{ (id) "-d" } { (desc) }
                line x1=(left) y1=(top + plot) x2=(DAYS_WIDTH - 4.0) y2=(top + plot) stroke="#4d5560" {}
                text x=(left - 6.0) y=(top + 10.0) text-anchor="end" { (max as u64) }
                text x=(left - 6.0) y=(top + plot) text-anchor="end" { "0" }
                @for (x, y, h, colour) in &rects {
                    rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill=(colour) {}
                }
                @for (x, day) in &labels {
                    text x=(format!("{x:.1}")) y=(height - 14.0) text-anchor="middle" { (day.get(5..).unwrap_or(day)) }
                }
            }
            figcaption { (title) }
            ul.legend {
                @for (s, (name, _)) in shown.iter().enumerate() {
                    li {
                        svg.swatch width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(COLOURS[s]) {} }
                        (name)
                    }
                }
            }
        }
        (table(title, &header, &rows))
    }
}

/// The numbers of a chart, folded away under it.
fn table(title: &str, header: &[&str], rows: &[Vec<String>]) -> Markup {
    html! {
        details {
            summary { "The numbers: " (title) }
            (super::page::table_wrap(&format!("The numbers: {title}"), html! {
                table {
                    thead { tr { @for h in header { th { (h) } } } }
                    tbody { @for r in rows { tr { @for c in r { td { (c) } } } } }
                }
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heights of the chart's own rectangles (not the legend's swatches after it).
    fn rects(html: &str) -> Vec<f64> {
        let chart = html.split("<figcaption").next().unwrap_or_default();
        chart
            .split("<rect ")
            .skip(1)
            .filter_map(|r| r.split("height=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn a_bar_chart_names_itself_for_screen_readers_and_lists_its_numbers() {
        let html = bars(
            "f",
            "By status",
            "Status",
            "Opportunities",
            &[("new".into(), 4), ("won".into(), 2), ("lost".into(), 0)],
        )
        .into_string();
        assert!(html.contains(r#"role="img""#) && html.contains(r#"aria-labelledby="f-t f-d""#));
        assert!(html.contains("<desc id=\"f-d\">new: 4, won: 2, lost: 0</desc>"));
        assert!(html.contains("<td>won</td><td>2</td>"), "the numbers are in a table too");
        let widths: Vec<f64> = html
            .split("<rect ")
            .skip(1)
            .filter_map(|r| r.split("width=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(widths.len(), 3);
        assert!((widths[0] - 2.0 * widths[1]).abs() < 0.2 && widths[2] == 0.0, "bars are to scale: {widths:?}");
    }

    #[test]
    fn stacked_columns_are_as_tall_as_their_day_and_the_tallest_fills_the_plot() {
        let days = vec!["2026-12-01".to_owned(), "2026-12-02".to_owned()];
        let series = vec![("AppSource".to_owned(), vec![1, 3]), ("AzureMarketplace".to_owned(), vec![1, 0])];
        let html = stacked_days("d", "Per day", &days, &series).into_string();
        let heights = rects(&html);
        assert_eq!(heights.len(), 3, "no rectangle for an empty count");
        let plot = 220.0 - 10.0 - 34.0;
        assert!((heights[0] + heights[1] - plot / 1.5).abs() < 0.3, "day one is 2 of 3: {heights:?}");
        assert!((heights[2] - plot).abs() < 0.2, "day two, the tallest, fills the plot");
        assert!(html.contains("<td>2026-12-02</td><td>3</td><td>0</td><td>3</td>"));
    }
}
