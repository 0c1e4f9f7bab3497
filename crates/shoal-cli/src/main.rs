//! `shoal`: run and operate Shoal Socket.IO nodes from the command line.
//!
//! `shoal serve` runs one node (in-memory adapter) with a demo chat page at `/`.

mod balance;
mod cli;
mod config;
mod demo;
mod node;
mod web;

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}

/// Logs to stderr with `filter` and runs `task` to its end on a multi-threaded runtime;
/// the process's exit status (an error is logged).
fn run_logged(filter: tracing_subscriber::EnvFilter, task: impl Future<Output = Result<(), String>>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
