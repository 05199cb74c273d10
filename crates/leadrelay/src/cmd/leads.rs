//! `leadrelay leads list`

use leadrelay_core::storage::{LeadFilter, PageRequest};
use leadrelay_core::{OfferId, PublisherId};
use leadrelay_server::config::Config;

/// Prints leads, newest first.
pub async fn list(
    config: &Config,
    publisher: Option<String>,
    offer: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let ops = super::open_ops(config).await?;
    let filter = LeadFilter {
        publisher: publisher
            .as_deref()
            .map(PublisherId::parse)
            .transpose()
            .map_err(|rule| anyhow::anyhow!("--publisher {rule}"))?,
        offer: offer.as_deref().map(OfferId::parse).transpose().map_err(|rule| anyhow::anyhow!("--offer {rule}"))?,
        ..LeadFilter::default()
    };
    let page = ops.list_leads(&filter, &PageRequest { limit: limit.clamp(1, 1000), cursor: None }).await?;
    if !json {
        println!("{:<38} {:<12} {:<28} {:<16} {:<18} RECEIVED", "ID", "PUBLISHER", "OFFER", "SOURCE", "STAGE");
    }
    for l in &page.items {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "id": l.id.as_str(), "publisher": l.publisher.as_str(), "offer": l.offer.as_ref().map(OfferId::as_str),
                    "lead_source": l.lead_source_string(), "stage": l.stage.as_str(), "is_test": l.is_test,
                    "received_at": l.received_at.to_rfc3339(),
                })
            );
        } else {
            println!(
                "{:<38} {:<12} {:<28} {:<16} {:<18} {}",
                l.id,
                l.publisher,
                l.offer.as_ref().map_or("-", OfferId::as_str),
                l.source.as_str(),
                l.stage.as_str(),
                l.received_at
            );
        }
    }
    Ok(())
}
