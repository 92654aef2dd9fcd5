//! `vexctl`: the command-line front end of VexFS.

mod device;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use device::Vexfs;
use serde::Serialize;

#[derive(Parser)]
#[command(name = "vexctl", version, about = "Control and inspect VexFS mounts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the module's version, ABI version and the CPU features it detected.
    Version {
        /// Any file or directory on a VexFS mount.
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show memory pool counters and this mount's operation counters.
    Stats {
        /// Any file or directory on a VexFS mount.
        path: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

fn print<T: Serialize>(
    json: bool,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", table(value));
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version { path, json } => {
            let info = Vexfs::open(&path)?.version()?;
            print(json, &report::Version::new(&info), report::Version::table)
        }
        Command::Stats { path, json } => {
            let stats = Vexfs::open(&path)?.stats()?;
            print(json, &report::Stats::new(&stats), report::Stats::table)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vexctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
