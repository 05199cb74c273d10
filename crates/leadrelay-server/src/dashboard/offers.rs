//! Offers: the publisher's offers as the marketplace lists them (a lead names its offer by
//! title or id), and the form that adds one or changes its title and type.

use axum::extract::State;
use axum::response::{Html, Response};
use leadrelay_core::OfferId;
use leadrelay_core::access::Scope;
use leadrelay_core::offer::OfferType;
use maud::html;

use super::page::{self, AfterChange, Banner, Section, answer_change, choice, csrf, maybe_time, redirect_done, time};
use super::session::{Member, PageQuery, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::state::AppState;

async fn render(state: &AppState, member: &Member, banner: Option<Banner>) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(member, publisher, Scope::Read, "publisher")?;
    let offers = state.ops.storage().list_offers(publisher).await.map_err(ApiError::from)?;
    let types: Vec<(String, String)> =
        OfferType::ALL.iter().map(|t| (t.as_str().to_owned(), t.as_str().to_owned())).collect();
    let content = html! {
        @if offers.is_empty() {
            p { "No offer yet. Leads that name no registered offer are still received, listed and worked." }
        } @else {
            (page::table_wrap("Offers", html! {
                table {
                    thead { tr { th { "Offer" } th { "Id" } th { "Type" } th { "Added" } th { "Published" } } }
                    tbody {
                        @for o in &offers {
                            tr {
                                td { (o.title) } td { code { (o.id) } } td { (o.offer_type.as_str()) }
                                td { (time(o.created_at, member)) } td { (maybe_time(o.published_at, member)) }
                            }
                        }
                    }
                }
            }))
        }
        @if member.may(Scope::Write) {
            section.panel aria-labelledby="h-add-offer" {
                h2 #h-add-offer { "Add an offer, or change one" }
                form method="post" action="/ui/offers" {
                    (csrf(member))
                    div.inline {
                        (page::field("offer", &format!("Id (after \u{201c}{publisher}.\u{201d})"), "text", None,
                            Some("Lowercase letters, digits, - and _; an existing id changes that offer."), true))
                        (page::field("title", "Title", "text", None, Some("As the marketplace shows it (leads name it)."), true))
                        (choice("type", "Type", &types, Some(OfferType::Saas.as_str())))
                    }
                    button type="submit" { "Save offer" }
                }
            }
        }
    };
    Ok(page::page(member, Section::Offers, "Offers", banner.as_ref(), content))
}

/// `GET /ui/offers`
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    PageQuery(done): PageQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    render(&state, &member, done.banner()).await
}

/// `POST /ui/offers` (`offer`: the id after the publisher's, `title`, `type`)
pub async fn save(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let result = async {
        let publisher = &member.user.publisher;
        check(&member, publisher, Scope::Write, "publisher")?;
        let part = form.text("offer").unwrap_or_default();
        let id = OfferId::parse(&format!("{publisher}.{part}")).map_err(|_| {
            ApiError::field("offer", "must be lowercase letters, digits, - and _ (the part after the publisher's id)")
        })?;
        let offer_type = form
            .text("type")
            .and_then(OfferType::parse)
            .ok_or_else(|| ApiError::field("type", "must be one of the listed types"))?;
        state.ops.put_offer(publisher, id, form.text("title").unwrap_or_default().to_owned(), offer_type).await?;
        Ok(redirect_done("/ui/offers", "offer"))
    }
    .await;
    answer_change(result, |banner| render(&state, &member, Some(banner))).await
}
