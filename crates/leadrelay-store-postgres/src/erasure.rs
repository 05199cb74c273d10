//! Erasure of a person and retention (called from `leads.rs`).
