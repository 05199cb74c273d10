//! Tests of the real binary: startup output, the CLI, and the crash test that kills the
//! process under load.

mod bench;
mod cli;
mod connections;
mod crash;
mod disk_full;
mod seed;
mod support;
