//! Test support shared by every crate's tests: a recording webhook receiver, a manual clock,
//! and the bridge to the Python `standardwebhooks` verifier. Only ever a dev-dependency.

pub mod azurite;
pub mod clock;
pub mod crm;
pub mod python;
pub mod receiver;
pub mod smtp;
pub mod storage_contract;

pub use clock::ManualClock;
pub use receiver::{Recorded, TestReceiver};
