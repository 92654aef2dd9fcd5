//! `vexctl`: the command-line front end of VexFS.

mod batch;
mod commands;
mod input;
mod names;
mod profile;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use commands::{IndexKind, Metric};
use input::Source;
use serde::Serialize;

#[derive(Parser)]
#[command(name = "vexctl", version, about = "Control and inspect VexFS mounts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Vectors to insert: a file of rows.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct RowsInput {
    /// Little-endian float32 C-order .npy file of shape (rows, dim).
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// .fvecs file (each row: i32 dim, then dim float32, little-endian).
    #[arg(long, value_name = "FILE")]
    fvecs: Option<PathBuf>,
}

impl RowsInput {
    fn source(self) -> Source {
        match (self.npy, self.fvecs) {
            (Some(p), _) => Source::Npy(p),
            (None, Some(p)) => Source::Fvecs(p),
            (None, None) => unreachable!("clap requires one of the group"),
        }
    }
}

/// Queries: a file of rows or one literal vector.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct QueryInput {
    /// float32 .npy file of shape (nq, dim), or (dim,) for one query.
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// .fvecs file of queries.
    #[arg(long, value_name = "FILE")]
    fvecs: Option<PathBuf>,
    /// One query as comma-separated numbers, e.g. 0.5,-1,2.
    #[arg(long, value_name = "X,Y,...", allow_hyphen_values = true)]
    vector: Option<String>,
}

impl QueryInput {
    fn source(self) -> Source {
        match (self.npy, self.fvecs, self.vector) {
            (Some(p), _, _) => Source::Npy(p),
            (None, Some(p), _) => Source::Fvecs(p),
            (None, None, Some(v)) => Source::Literal(v),
            (None, None, None) => unreachable!("clap requires one of the group"),
        }
    }
}

/// The vector of a file: one row.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct OneVector {
    /// float32 .npy file of shape (1, dim) or (dim,).
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// The vector as comma-separated numbers, e.g. 0.5,-1,2.
    #[arg(long, value_name = "X,Y,...", allow_hyphen_values = true)]
    vector: Option<String>,
}

impl OneVector {
    fn source(self) -> Source {
        match (self.npy, self.vector) {
            (Some(p), _) => Source::Npy(p),
            (None, Some(v)) => Source::Literal(v),
            (None, None) => unreachable!("clap requires one of the group"),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Profile VexFS operations with eBPF: counts, latency percentiles,
    /// kernel stack use and flame graphs (needs root).
    Profile(profile::ProfileArgs),
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
    /// Make a directory a vector collection (creating the directory if needed).
    ///
    /// The directory must be empty. Its vectors all have the given dimension
    /// and are compared with the given metric. A flat collection answers
    /// every search exactly; an HNSW collection keeps a graph index and
    /// answers approximately (exactly with `search --exact`).
    Create {
        /// Directory on a VexFS mount; created with mode 0755 if missing.
        dir: PathBuf,
        /// Dimension of every vector, 1 to 4096.
        #[arg(long, value_name = "D")]
        dim: u32,
        /// Distance metric; smaller is nearer for all of them.
        #[arg(long, value_enum)]
        metric: Metric,
        /// Index: flat (exact search, the default) or hnsw (approximate).
        #[arg(long, value_enum, value_name = "KIND")]
        index: Option<IndexKind>,
        /// HNSW: neighbours per node, 2 to 127 (default 16).
        #[arg(long, value_name = "M")]
        m: Option<u32>,
        /// HNSW: beam width while inserting, 1 to 4096 (default 200).
        #[arg(long, value_name = "EF")]
        ef_construction: Option<u32>,
    },
    /// Show a collection's dimension, metric, index, vector count and memory use.
    Info {
        /// Collection directory.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Insert (or replace) vectors; row r of the file gets id START_ID + r.
    ///
    /// Each batch is applied whole or not at all; if one fails, the rows of
    /// the batches before it stay inserted and the error says which.
    Insert {
        /// Collection directory.
        dir: PathBuf,
        #[command(flatten)]
        input: RowsInput,
        /// Id of the first row.
        #[arg(long, value_name = "N", default_value_t = 0)]
        start_id: u64,
        /// Rows per insert request, 1 to 1048576.
        #[arg(long, value_name = "B", default_value_t = 10_000)]
        batch: u32,
        /// Report progress after each batch even when standard error is not
        /// a terminal (a line per batch; on a terminal, a bar is drawn
        /// anyway).
        #[arg(long)]
        progress: bool,
    },
    /// Find the K nearest vectors of each query.
    ///
    /// Hits that are files' vectors are named by their path in the collection.
    Search {
        /// Collection directory.
        dir: PathBuf,
        #[command(flatten)]
        input: QueryInput,
        /// Results per query, 1 to 1024.
        #[arg(short = 'k', value_name = "K")]
        k: u32,
        /// HNSW collections: beam width of the search, 1 to 4096 (default
        /// 64; raised to K when smaller). Larger is slower and more accurate.
        #[arg(long, value_name = "N")]
        ef: Option<u32>,
        /// Scan every vector (exact k-NN) even on an HNSW collection.
        #[arg(long, conflicts_with = "ef")]
        exact: bool,
        /// Print one JSON object per query per line:
        /// {"query": i, "results": [{"id", "distance", "name"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Print one vector by id, and whether it is a file's vector.
    Get {
        /// Collection directory.
        dir: PathBuf,
        /// Vector id.
        id: u64,
        /// Print {"id", "file", "vector"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete vectors by id, all or none (nothing is deleted if one is absent).
    Delete {
        /// Collection directory.
        dir: PathBuf,
        /// Ids to delete (repeats are ignored).
        #[arg(required = true, value_name = "ID")]
        ids: Vec<u64>,
    },
    /// Set the vector of a regular file in a collection (its id is the inode number).
    Attach {
        /// Regular file directly inside a collection directory.
        file: PathBuf,
        #[command(flatten)]
        input: OneVector,
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
        } => commands::create(
            &dir,
            dim,
            metric,
            &commands::IndexArgs {
                kind: index,
                m,
                ef_construction,
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
            json,
        } => commands::search(
            &dir,
            &input.source(),
            k,
            commands::search_mode(ef, exact),
            json,
        ),
        Command::Get { dir, id, json } => commands::get(&dir, id, json),
        Command::Delete { dir, ids } => commands::delete(&dir, &ids),
        Command::Attach { file, input } => commands::attach(&file, &input.source()),
        Command::Profile(args) => profile::run(args),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::Path;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vexctl").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn input_flags_are_exclusive_and_required() {
        assert!(parse(&["insert", "d", "--npy", "a", "--fvecs", "b"]).is_err());
        assert!(parse(&["insert", "d"]).is_err());
        assert!(parse(&["insert", "d", "--vector", "1,2"]).is_err());
        assert!(parse(&["attach", "f", "--fvecs", "a"]).is_err());
        assert!(parse(&["search", "d", "--vector", "1", "--npy", "q", "-k", "3"]).is_err());
        assert!(
            parse(&["search", "d", "--vector", "1"]).is_err(),
            "-k is required"
        );
        assert!(parse(&["delete", "d"]).is_err(), "ids are required");
        assert!(parse(&["create", "d", "--dim", "3", "--metric", "hamming"]).is_err());
        assert!(parse(&["create", "d", "--dim", "3", "--metric", "l2", "--index", "ivf"]).is_err());
        let exact_and_ef = parse(&[
            "search", "d", "--vector", "1", "-k", "3", "--exact", "--ef", "9",
        ]);
        assert_eq!(
            exact_and_ef.err().map(|e| e.kind()),
            Some(clap::error::ErrorKind::ArgumentConflict),
            "--ef and --exact conflict"
        );
    }

    #[test]
    fn arguments_reach_the_commands() {
        let Command::Insert {
            input,
            start_id,
            batch,
            ..
        } = parse(&["insert", "d", "--fvecs", "x.fvecs", "--start-id", "5"])
            .unwrap()
            .command
        else {
            panic!("not insert");
        };
        assert!(matches!(input.source(), Source::Fvecs(p) if p == Path::new("x.fvecs")));
        assert_eq!((start_id, batch), (5, 10_000));

        // Negative first components are values, not flags.
        let Command::Search { input, k, json, .. } =
            parse(&["search", "d", "--vector", "-1,2", "-k", "7", "--json"])
                .unwrap()
                .command
        else {
            panic!("not search");
        };
        assert!(matches!(input.source(), Source::Literal(v) if v == "-1,2"));
        assert_eq!((k, json), (7, true));

        let Command::Create { dim, metric, .. } =
            parse(&["create", "d", "--dim", "50", "--metric", "cosine"])
                .unwrap()
                .command
        else {
            panic!("not create");
        };
        assert_eq!((dim, metric), (50, Metric::Cosine));

        let Command::Create {
            index,
            m,
            ef_construction,
            ..
        } = parse(&[
            "create",
            "d",
            "--dim",
            "50",
            "--metric",
            "l2",
            "--index",
            "hnsw",
            "--m",
            "32",
            "--ef-construction",
            "400",
        ])
        .unwrap()
        .command
        else {
            panic!("not create");
        };
        assert_eq!(
            (index, m, ef_construction),
            (Some(IndexKind::Hnsw), Some(32), Some(400))
        );

        let Command::Search { ef, exact, .. } =
            parse(&["search", "d", "--vector", "1", "-k", "3", "--ef", "128"])
                .unwrap()
                .command
        else {
            panic!("not search");
        };
        assert_eq!((ef, exact), (Some(128), false));
        let Command::Search { ef, exact, .. } =
            parse(&["search", "d", "--vector", "1", "-k", "3", "--exact"])
                .unwrap()
                .command
        else {
            panic!("not search");
        };
        assert_eq!((ef, exact), (None, true));

        let Command::Delete { ids, .. } = parse(&["delete", "d", "1", "2", "3"]).unwrap().command
        else {
            panic!("not delete");
        };
        assert_eq!(ids, [1, 2, 3]);
    }
}
