//! `vexctl`, the command-line front end of VexFS, as a library: the binary
//! calls [`main`]; `vexfs-man` writes the man pages from [`command`].

mod batch;
mod cli;
mod commands;
mod embed;
mod input;
mod names;
mod profile;
mod progress;
mod report;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
pub use clap_complete::Shell;
use serde::Serialize;

pub use cli::command;
use cli::{Cli, Command};

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
            let info = vexfs::Mount::open(&path)?.version()?;
            print(json, &report::Version::new(&info), report::Version::table)
        }
        Command::Stats { path, json } => {
            let stats = vexfs::Mount::open(&path)?.stats()?;
            print(json, &report::Stats::new(&stats), report::Stats::table)
        }
        Command::Create {
            dir,
            dim,
            metric,
            index,
            m,
            ef_construction,
            quantize,
        } => commands::create(
            &dir,
            dim,
            metric,
            &commands::IndexArgs {
                kind: index,
                m,
                ef_construction,
                quantize,
            },
        ),
        Command::Info { dir, json } => commands::info(&dir, json),
        Command::Insert {
            dir,
            input,
            start_id,
            batch,
            progress,
        } => commands::insert(&dir, &input.source(), start_id, batch, progress),
        Command::Search {
            dir,
            input,
            k,
            ef,
            exact,
            filter,
            json,
        } => {
            let (mode, filter) = (commands::search_mode(ef, exact), filter.filter());
            if input.text.is_empty() {
                commands::search(&dir, &input.source(), k, mode, &filter, json)
            } else {
                commands::search_text(&dir, &input.text, k, mode, &filter, json)
            }
        }
        Command::Get { dir, id, json } => commands::get(&dir, id, json),
        Command::Delete { dir, ids } => commands::delete(&dir, &ids),
        Command::Attach { file, input } => commands::attach(&file, &input.source()),
        Command::Embed {
            dir,
            model,
            model_dir,
            watch,
            force,
            cache_only,
            cache_dir,
            no_cache,
            progress,
        } => embed::run(&embed::EmbedOptions {
            dir,
            model,
            model_dir,
            cache_only,
            cache_dir,
            no_cache,
            force,
            progress,
            watch,
        }),
        Command::Profile(args) => profile::run(args),
        Command::Completions { shell } => {
            let mut out = io::stdout().lock();
            out.write_all(&completions(shell))?;
            Ok(out.flush()?)
        }
    }
}

/// The completion script of `vexctl` for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), "vexctl", &mut script);
    script
}

/// `vexctl`'s `main`: parses the command line, runs the command, prints
/// an error on failure.
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vexctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
