//! `GET /dashboard`: the organisation's incidents by status and severity,
//! and opened and closed per day for 30 days, as charts drawn here in SVG
//! (no chart library; colours come from the stylesheet's classes).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::layout::{page, respond, Failure, Nav};
use super::session::Browser;
use crate::AppState;

/// Horizontal bars, one per value, labelled with its count.
fn bars(title: &str, kind: &str, counts: &[(String, i64)]) -> Markup {
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let height = 28 * counts.len().max(1) as i64;
    html! {
        figure.chart {
            figcaption { (title) }
            @if counts.is_empty() { p.empty { "No incidents." } } @else {
                svg viewBox={ "0 0 400 " (height) } width="100%" role="img" aria-label=(title) {
                    @for (i, (value, n)) in counts.iter().enumerate() {
                        @let y = i as i64 * 28;
                        @let w = 260 * n / max;
                        text x="0" y=(y + 18) class="label" { (value.replace('_', " ")) }
                        rect x="110" y=(y + 4) width=(w.max(1)) height="18" class={ "bar " (kind) "-" (value) } {}
                        text x=(116 + w) y=(y + 18) class="count" { (n) }
                    }
                }
                table.visually-hidden {
                    caption { (title) }
                    @for (value, n) in counts { tr { th scope="row" { (value) } td { (n) } } }
                }
            }
        }
    }
}

/// Opened and closed per day, two bars a day.
fn per_day(days: &[(ironcase_domain::Timestamp, i64, i64)]) -> Markup {
    let max = days.iter().map(|(_, o, c)| (*o).max(*c)).max().unwrap_or(0).max(1);
    let (chart_h, step) = (120, 24);
    let total: (i64, i64) = days.iter().fold((0, 0), |(a, b), (_, o, c)| (a + o, b + c));
    html! {
        figure.chart {
            figcaption { "Opened and closed per day, last " (days.len()) " days (" (total.0) " opened, " (total.1) " closed)" }
            svg viewBox={ "0 0 " (days.len() as i64 * step + 4) " " (chart_h + 16) } width="100%" role="img"
                aria-label={ "Incidents opened and closed per day: " (total.0) " opened, " (total.1) " closed" } {
                @for (i, (_, opened, closed)) in days.iter().enumerate() {
                    @let x = i as i64 * step;
                    @let ho = chart_h * opened / max;
                    @let hc = chart_h * closed / max;
                    rect x=(x + 2) y=(chart_h - ho) width="10" height=(ho) class="bar opened" {}
                    rect x=(x + 12) y=(chart_h - hc) width="10" height=(hc) class="bar closed" {}
                }
                @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                    text x="0" y=(chart_h + 14) class="label" { (first.0.to_rfc3339().get(5..10).unwrap_or("")) }
                    text x=(days.len() as i64 * step - 34) y=(chart_h + 14) class="label" { (last.0.to_rfc3339().get(5..10).unwrap_or("")) }
                }
            }
            p.legend { span.key.opened {} " opened " span.key.closed {} " closed" }
            table.visually-hidden {
                caption { "Opened and closed per day" }
                thead { tr { th scope="col" { "Day" } th scope="col" { "Opened" } th scope="col" { "Closed" } } }
                @for (day, o, c) in days { tr { th scope="row" { (day.to_rfc3339().get(..10).unwrap_or("")) } td { (o) } td { (c) } } }
            }
        }
    }
}

pub(crate) async fn show(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    let d = s.app.dashboard(&b.p, &b.meta, 30).await?;
    let body = html! {
        h1 { "Dashboard" }
        div.charts {
            (bars("By status", "status", &d.by_status))
            (bars("By severity", "severity", &d.by_severity))
        }
        (per_day(&d.per_day))
    };
    Ok(respond(StatusCode::OK, page("Dashboard", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
