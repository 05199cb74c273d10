//! KPIs: the funnel, leads per day by source and by action, time to first touch, the rates,
//! and destination health, for a period (the last 30 days unless chosen) and an offer.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::Html;
use leadrelay_core::access::Scope;
use leadrelay_core::audit::AuditAction;
use leadrelay_core::sales::OpportunityStatus;
use leadrelay_core::sales::kpi::{DailyLeads, FIRST_TOUCH_BUCKET_HOURS, Figures};
use maud::{Markup, html};

use super::charts;
use super::page::{self, Section, choice, percent};
use super::session::{Member, UiError, check};
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::http::sales::{KpiQueryIn, kpi_query};
use crate::state::AppState;

/// The period shown when none is chosen.
const DEFAULT_DAYS: u64 = 30;

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "—".to_owned(), |h| if h < 1.0 { format!("{:.0} min", h * 60.0) } else { format!("{h:.1} h") })
}

fn figures(f: &Figures) -> Markup {
    let cell =
        |label: &str, value: String| html! { div.panel { div.muted { (label) } div.title { strong { (value) } } } };
    html! {
        div.figures #figures {
            (cell("Opportunities", f.opportunities.to_string()))
            (cell("Contact rate", percent(f.contact_rate)))
            (cell("First touch, median", hours(f.first_touch_hours_p50)))
            (cell("First touch, 90th percentile", hours(f.first_touch_hours_p90)))
            (cell("SLA breached", percent(f.sla_breach_rate)))
            (cell("Qualification rate", percent(f.qualification_rate)))
            (cell("Win rate", percent(f.win_rate)))
            (cell("Follow-ups per won", f.follow_ups_per_won.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}"))))
        }
    }
}

/// Every day of the period that has leads, and per series (a source or an action) its count
/// on each of those days.
fn per_day(daily: &[DailyLeads], series_of: impl Fn(&DailyLeads) -> String) -> (Vec<String>, Vec<(String, Vec<u64>)>) {
    let days: Vec<String> =
        daily.iter().map(|d| d.day.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in daily {
        let i = days.iter().position(|x| *x == d.day).unwrap_or_default();
        by.entry(series_of(d)).or_insert_with(|| vec![0; days.len()])[i] += d.leads;
    }
    let mut series: Vec<(String, Vec<u64>)> = by.into_iter().collect();
    series.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().sum::<u64>()));
    (days, series)
}

fn bucket_labels() -> Vec<String> {
    let mut labels = Vec::new();
    let mut from = 0;
    for to in FIRST_TOUCH_BUCKET_HOURS {
        labels.push(format!("{from}–{to} h"));
        from = to;
    }
    labels.push(format!("{from} h or more"));
    labels
}

/// `GET /ui/kpis?since=&until=&offer=` (dates)
pub async fn get(
    State(state): State<AppState>,
    member: Member,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(&member, publisher, Scope::Read, "publisher")?;
    let q = Query::parse_for::<KpiQueryIn>(raw.as_deref())?;
    for name in ["group_by", "format"] {
        if q.text(name).is_some() {
            return Err(
                ApiError::field(name, "is not read here: the page shows every figure, the CSV link the table").into()
            );
        }
    }
    let mut query = kpi_query(&q, publisher)?;
    if query.since.is_none() && query.until.is_none() {
        query.since = Some(state.ops.now().minus(Duration::from_secs(DEFAULT_DAYS * 86_400)));
    }
    let report = state.ops.kpis(query.clone()).await?;
    state.ops.record(state.ops.audit_entry(&member.actor(), Some(publisher), AuditAction::KpisRead)).await?;
    let destinations = state.ops.list_destinations(publisher).await?;
    let offers = state.ops.storage().list_offers(publisher).await.map_err(ApiError::from)?;
    let offer_options =
        page::options_with_any("Every offer", offers.iter().map(|o| (o.id.to_string(), o.title.clone())));
    let funnel: Vec<(String, u64)> = OpportunityStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), report.overall.funnel.get(s.as_str()).copied().unwrap_or(0)))
        .collect();
    let touch: Vec<(String, u64)> =
        bucket_labels().into_iter().zip(report.first_touch_histogram.iter().copied()).collect();
    let (days, by_source) = per_day(&report.leads_per_day, |d| d.source.clone());
    let (_, by_action) = per_day(&report.leads_per_day, |d| d.action.clone().unwrap_or_else(|| "none".to_owned()));
    let since = query.since.map(|t| t.to_rfc3339().get(..10).unwrap_or_default().to_owned());
    let until = q.text("until").map(str::to_owned);
    let csv: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [("since", since.clone()), ("until", until.clone()), ("offer", q.text("offer").map(str::to_owned))]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v))),
        )
        .append_pair("format", "csv")
        .finish();
    let content = html! {
        form.filters method="get" action="/ui/kpis" aria-label="Period and offer" {
            div.inline {
                (page::field("since", "From", "date", since.as_deref(), None, false))
                (page::field("until", "Before", "date", until.as_deref(), None, false))
                (choice("offer", "Offer", &offer_options, q.text("offer")))
                button type="submit" { "Show" }
            }
        }
        p { a.button.secondary href={ "/v1/publishers/" (publisher) "/kpis?" (csv) } download { "Download CSV" } }
        (figures(&report.overall))
        div.grid {
            section.panel aria-labelledby="h-funnel" {
                h2 #h-funnel { "Funnel" }
                (charts::bars("funnel", "Opportunities by status", "Status", "Opportunities", &funnel))
            }
            section.panel aria-labelledby="h-touch" {
                h2 #h-touch { "Time to first touch" }
                (charts::bars("touch", "Touched opportunities by hours to the first touch", "Hours", "Opportunities", &touch))
            }
        }
        section.panel aria-labelledby="h-source" {
            h2 #h-source { "Leads per day by source" }
            @if days.is_empty() { p { "No lead in the period." } }
            @else { (charts::stacked_days("by-source", "Leads per day (UTC) by source", &days, &by_source)) }
        }
        section.panel aria-labelledby="h-action" {
            h2 #h-action { "Leads per day by action" }
            @if days.is_empty() { p { "No lead in the period." } }
            @else { (charts::stacked_days("by-action", "Leads per day (UTC) by action", &days, &by_action)) }
        }
        section.panel aria-labelledby="h-health" {
            h2 #h-health { "Destination health" }
            (page::table_wrap("Destination health", html! {
                table {
                    thead { tr { th { "Destination" } th.num { "Deliveries" } th.num { "Attempts delivered" } th.num { "95 % delivered within" } th.num { "Dead letters" } } }
                    tbody {
                        @for h in &report.destinations {
                            tr {
                                td {
                                    a href={ "/ui/destinations/" (h.destination) } {
                                        (super::destinations::name_of(&destinations, &h.destination))
                                    }
                                }
                                td.num { (h.deliveries) }
                                td.num { (percent(h.success_rate)) }
                                td.num { (h.p95_lag_ms.map_or_else(|| "—".to_owned(), page::duration_text)) }
                                td.num { (h.dead_letters) }
                            }
                        }
                    }
                }
            }))
        }
    };
    Ok(page::page(&member, Section::Kpis, "KPIs", None, content))
}
