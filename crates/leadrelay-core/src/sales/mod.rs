//! The sales team's workspace (SPEC §6): the people who follow leads up ([`people`]), the
//! opportunity a customer's interest in an offer becomes and the rules of its status
//! ([`opportunity`]), what a publisher configures for its team ([`settings`]), when the first
//! touch is due ([`sla`]) and the figures a sales manager watches ([`kpi`]).
//!
//! Everything here is pure: storage keeps these values and the server applies these rules, so
//! every backend and every way in (API, CLI, dashboard) agrees on them.

pub mod kpi;
pub mod opportunity;
pub mod people;
pub mod settings;
pub mod sla;

pub use opportunity::{
    Activity, ActivityKind, ChecklistEntry, Opportunity, OpportunityStatus, StatusChange, opens_opportunity, stage_rank,
};
pub use people::{Role, Session, User};
pub use settings::{BusinessHours, FollowUpTarget, SalesSettings};
