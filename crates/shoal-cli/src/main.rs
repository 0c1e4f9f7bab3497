//! `shoal`: run and operate Shoal Socket.IO nodes from the command line.
//!
//! `shoal serve` runs one node (in-memory adapter) with a demo chat page at `/`.

mod balance;
mod cli;
mod config;
mod demo;
mod node;
mod signals;
mod web;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}
