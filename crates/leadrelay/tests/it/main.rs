//! Tests of the real binary: startup output, the CLI, the crash test that kills the process
//! under load, and several nodes on one PostgreSQL database.

mod bench;
mod cli;
mod connections;
mod crash;
mod disk_full;
mod nodes;
mod seed;
mod support;
