//! `shoal-bench`: drive a Socket.IO server that implements the benchmark contract and
//! print one JSON line of figures per scenario.

use clap::Parser;

fn main() {
    std::process::exit(shoal_bench::cli::run(shoal_bench::cli::Cli::parse()));
}
