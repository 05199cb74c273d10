//! `leadrelay opportunities list|show|assign` and `leadrelay kpis`: the sales workspace's use
//! cases from a shell, printed in the API's own JSON (or CSV) so scripts read one format. The
//! CLI acts as the operator (`admin` in the audit log): whoever runs it holds the database.

use leadrelay_core::audit::Actor;
use leadrelay_core::sales::OpportunityStatus;
use leadrelay_core::sales::kpi::{KpiGroup, KpiQuery};
use leadrelay_core::storage::{OpportunityFilter, OwnerFilter, PageRequest};
use leadrelay_core::{OfferId, OpportunityId, PublisherId, Timestamp, UserId};
use leadrelay_server::config::Config;
use leadrelay_server::http::sales::{KpisOut, OpportunityOut, kpi_csv};
use leadrelay_server::ops::{DueList, OpportunityPatch, OpportunityView, OpsError, owner_filter};

fn publisher(p: &str) -> anyhow::Result<PublisherId> {
    PublisherId::parse(p).map_err(|rule| anyhow::anyhow!("--publisher {rule}"))
}

fn opportunity(id: &str) -> anyhow::Result<OpportunityId> {
    OpportunityId::parse(id).ok_or_else(|| anyhow::anyhow!("'{id}' is not an opportunity id (opp_…)"))
}

/// `--owner`: a user id or `none` (the CLI signs nobody in, so `me` is refused with its rule).
fn owner(text: &str) -> anyhow::Result<OwnerFilter> {
    owner_filter(text, None).map_err(|rule| anyhow::anyhow!("--owner {rule}"))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// What `opportunities list` filters on.
#[derive(Debug, Default)]
pub struct ListArgs {
    /// The publisher.
    pub publisher: String,
    /// A status name.
    pub status: Option<String>,
    /// `usr_…` or `none`.
    pub owner: Option<String>,
    /// `today`, `overdue` or `sla_breached`.
    pub due: Option<String>,
    /// How many.
    pub limit: u32,
    /// JSON lines instead of a table.
    pub json: bool,
}

/// `leadrelay opportunities list`
pub async fn list(config: &Config, args: ListArgs) -> anyhow::Result<()> {
    let ops = super::open_ops(config).await?;
    let publisher = publisher(&args.publisher)?;
    let status = args
        .status
        .as_deref()
        .map(|s| OpportunityStatus::parse(s).ok_or_else(|| anyhow::anyhow!("--status {}", OpportunityStatus::RULE)))
        .transpose()?;
    let owner = args.owner.as_deref().map(owner).transpose()?;
    let due = match args.due.as_deref() {
        None => None,
        Some(d) => {
            let list = DueList::parse(d).ok_or_else(|| anyhow::anyhow!("--due {}", DueList::RULE))?;
            Some(ops.due_filter(&publisher, list).await?)
        }
    };
    let filter = OpportunityFilter { publisher: Some(publisher), status, owner, due, ..OpportunityFilter::default() };
    let (page, target, now) =
        ops.list_opportunities(&filter, &PageRequest { limit: args.limit.clamp(1, 1000), cursor: None }).await?;
    if !args.json {
        println!(
            "{:<36} {:<10} {:<16} {:<13} {:<36} {:<9} FIRST TOUCH DUE",
            "ID", "STATUS", "STAGE", "FOLLOW-UPS", "OWNER", "SLA"
        );
    }
    for o in page.items {
        let view = OpportunityView { opportunity: o, target, now };
        if args.json {
            println!("{}", serde_json::to_string(&OpportunityOut::from(&view))?);
            continue;
        }
        let o = &view.opportunity;
        println!(
            "{:<36} {:<10} {:<16} {:<13} {:<36} {:<9} {}",
            o.id,
            o.status.as_str(),
            o.stage.as_str(),
            format!("{} of {}-{}", o.follow_up_count(), target.min, target.max),
            o.owner.as_ref().map_or("-", UserId::as_str),
            if view.sla_breached() { "breached" } else { "ok" },
            o.first_touch_due_at
        );
    }
    Ok(())
}

/// `leadrelay opportunities show ID`
pub async fn show(config: &Config, id: &str) -> anyhow::Result<()> {
    let ops = super::open_ops(config).await?;
    let view = ops.get_opportunity(&opportunity(id)?).await?;
    print_json(&OpportunityOut::from(&view))
}

/// `leadrelay opportunities assign ID --owner usr_…|none`
pub async fn assign(config: &Config, id: &str, owner: &str) -> anyhow::Result<()> {
    let ops = super::open_ops(config).await?;
    let owner = match self::owner(owner)? {
        OwnerFilter::Unassigned => None,
        OwnerFilter::User(u) => Some(u),
    };
    let patch = OpportunityPatch { owner: Some(owner), ..OpportunityPatch::default() };
    // The operator holds the database: every publisher's opportunity is theirs to change.
    let anyone = |_: &PublisherId| Ok::<(), OpsError>(());
    let view = ops.update_opportunity(&Actor::admin(), &opportunity(id)?, patch, anyone).await?;
    print_json(&OpportunityOut::from(&view))
}

/// What `kpis` reports on.
#[derive(Debug, Default)]
pub struct KpiArgs {
    /// The publisher.
    pub publisher: String,
    /// RFC 3339 or a date.
    pub since: Option<String>,
    /// RFC 3339 or a date.
    pub until: Option<String>,
    /// An offer id.
    pub offer: Option<String>,
    /// A source.
    pub source: Option<String>,
    /// An action code.
    pub action: Option<String>,
    /// `offer`, `source` or `action`.
    pub group_by: Option<String>,
    /// CSV instead of JSON.
    pub csv: bool,
}

/// `leadrelay kpis`
pub async fn kpis(config: &Config, args: KpiArgs) -> anyhow::Result<()> {
    let ops = super::open_ops(config).await?;
    let time = |name: &str, v: Option<&str>| {
        v.map(Timestamp::parse_rfc3339).transpose().map_err(|rule| anyhow::anyhow!("--{name}: {rule}"))
    };
    let group_by = args
        .group_by
        .as_deref()
        .map(|g| KpiGroup::parse(g).ok_or_else(|| anyhow::anyhow!("--group-by {}", KpiGroup::RULE)))
        .transpose()?;
    let query = KpiQuery {
        since: time("since", args.since.as_deref())?,
        until: time("until", args.until.as_deref())?,
        offer: args
            .offer
            .as_deref()
            .map(OfferId::parse)
            .transpose()
            .map_err(|rule| anyhow::anyhow!("--offer {rule}"))?,
        source: args.source.as_deref().map(|s| leadrelay_core::Source::parse(s).as_str().to_owned()),
        action: args.action,
        group_by,
        ..KpiQuery::new(publisher(&args.publisher)?)
    };
    let report = ops.kpis(query).await?;
    if args.csv {
        print!("{}", kpi_csv(&report, group_by));
        return Ok(());
    }
    print_json(&KpisOut::new(&report, group_by))
}
