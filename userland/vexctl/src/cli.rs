//! `vexctl`'s command line: its clap definition, with the examples of
//! `--help`. The binary parses with it, and `vexfs-man` writes the man
//! pages from it, so both show the same options.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::commands::{IndexKind, Metric, Quantize};
use crate::embed;
use crate::input::Source;
use crate::profile;

#[derive(Parser)]
#[command(
    name = "vexctl",
    version,
    about = "Control and inspect VexFS mounts",
    long_about = "Control and inspect VexFS mounts.\n\n\
        vexctl talks to the VexFS module of a mounted VexFS (through the vexfs library): it \
        shows the module's version and counters, makes directories vector \
        collections, inserts, searches, reads and deletes their vectors, gives \
        files vectors of their own, and profiles VexFS operations with eBPF.",
    after_long_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Vectors to insert: a file of rows.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct RowsInput {
    /// Little-endian float32 C-order .npy file of shape (rows, dim).
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// .fvecs file (each row: i32 dim, then dim float32, little-endian).
    #[arg(long, value_name = "FILE")]
    fvecs: Option<PathBuf>,
}

impl RowsInput {
    pub fn source(self) -> Source {
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
pub struct QueryInput {
    /// float32 .npy file of shape (nq, dim), or (dim,) for one query.
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// .fvecs file of queries.
    #[arg(long, value_name = "FILE")]
    fvecs: Option<PathBuf>,
    /// One query as comma-separated numbers, e.g. 0.5,-1,2.
    #[arg(long, value_name = "X,Y,...", allow_hyphen_values = true)]
    vector: Option<String>,
    /// A question in words, embedded with the model of `vexctl embed`
    /// (the collection holds its 384-d vectors); hits show the first line
    /// of prose of the file's nearest chunk. Repeat it for several questions (the
    /// model loads once).
    #[arg(long, value_name = "QUERY")]
    pub text: Vec<String>,
}

impl QueryInput {
    pub fn source(self) -> Source {
        match (self.npy, self.fvecs, self.vector) {
            (Some(p), _, _) => Source::Npy(p),
            (None, Some(p), _) => Source::Fvecs(p),
            (None, None, Some(v)) => Source::Literal(v),
            (None, None, None) => unreachable!("clap requires one of the group"),
        }
    }
}

/// The vectors of a file: one row per part.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct FileVectors {
    /// float32 .npy file of shape (dim,), or (parts, dim) for a file with
    /// several vectors (1 to 1024 parts, e.g. one per chunk of a text).
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// The vector as comma-separated numbers, e.g. 0.5,-1,2.
    #[arg(long, value_name = "X,Y,...", allow_hyphen_values = true)]
    vector: Option<String>,
}

impl FileVectors {
    pub fn source(self) -> Source {
        match (self.npy, self.vector) {
            (Some(p), _) => Source::Npy(p),
            (None, Some(v)) => Source::Literal(v),
            (None, None) => unreachable!("clap requires one of the group"),
        }
    }
}

/// Which files a search may return (besides those the caller may read).
#[derive(Args)]
pub struct FilterArgs {
    /// Only files with a name under this directory of the collection.
    #[arg(long, value_name = "SUBDIR")]
    pub under: Option<PathBuf>,
    /// Only files whose user.* extended attribute NAME holds exactly VALUE.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_xattr)]
    pub xattr: Option<(String, String)>,
}

impl FilterArgs {
    /// The library's filter.
    pub fn filter(self) -> vexfs::SearchFilter {
        let mut f = vexfs::SearchFilter::new();
        if let Some(dir) = self.under {
            f = f.under(dir);
        }
        if let Some((name, value)) = self.xattr {
            f = f.xattr(name, value);
        }
        f
    }
}

/// `NAME=VALUE` of `--xattr`.
fn parse_xattr(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not NAME=VALUE"))?;
    if !name.starts_with("user.") || name.len() == "user.".len() {
        return Err(format!(
            "{name:?}: a search filters on user.* attributes only"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

#[derive(Subcommand)]
pub enum Command {
    /// Profile VexFS operations with eBPF: counts, latency percentiles,
    /// kernel stack use and flame graphs (needs root).
    #[command(after_long_help = PROFILE_EXAMPLES)]
    Profile(profile::ProfileArgs),
    /// Show the module's version, ABI version and the CPU features it detected.
    #[command(after_long_help = VERSION_EXAMPLES)]
    Version {
        /// Any file or directory on a VexFS mount.
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show memory pool counters and this mount's operation counters.
    #[command(after_long_help = STATS_EXAMPLES)]
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
    /// answers approximately (exactly with `search --exact`). With
    /// `--quantize sq8`, an HNSW collection walks its graph on 8-bit codes
    /// of its vectors (one more byte per dimension) and re-ranks what the
    /// walk found in float32, so the distances it returns stay exact.
    #[command(after_long_help = CREATE_EXAMPLES)]
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
        /// HNSW: how the graph walk reads the vectors (default none).
        #[arg(long, value_enum, value_name = "MODE")]
        quantize: Option<Quantize>,
    },
    /// Show a collection's dimension, metric, index, vector count and memory use.
    #[command(after_long_help = INFO_EXAMPLES)]
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
    /// the batches before it stay inserted and the error says which. On a
    /// terminal, a progress bar on standard error follows the batches.
    #[command(after_long_help = INSERT_EXAMPLES)]
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
    /// Without --json, on a terminal, a search of more than 1024 queries
    /// shows a progress bar on standard error.
    #[command(after_long_help = SEARCH_EXAMPLES)]
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
        #[command(flatten)]
        filter: FilterArgs,
        /// Print one JSON object per query per line:
        /// {"query": i, "results": [{"id", "distance", "name"}]} (files
        /// also with "part", the index of their nearest vector).
        #[arg(long)]
        json: bool,
    },
    /// Print one vector by id, and whether it is a file's vector.
    #[command(after_long_help = GET_EXAMPLES)]
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
    #[command(after_long_help = DELETE_EXAMPLES)]
    Delete {
        /// Collection directory.
        dir: PathBuf,
        /// Ids to delete (repeats are ignored).
        #[arg(required = true, value_name = "ID")]
        ids: Vec<u64>,
    },
    /// Give the text files of a collection's tree vectors from a local
    /// text-embedding model (all-MiniLM-L6-v2, 384-d), one per chunk.
    ///
    /// Incremental: a file whose content has not changed since its vectors
    /// were made (its user.vexfs.embedded attribute records the model and the
    /// content's SHA-256) is skipped. Chunk vectors are cached on disk by the
    /// hash of their text (--cache-dir). With --watch, follows changes until
    /// Ctrl-C. The collection needs dimension 384 (cosine).
    #[command(after_long_help = EMBED_EXAMPLES)]
    Embed {
        /// Collection directory (with --cache-only, any directory).
        dir: PathBuf,
        /// The embedding model.
        #[arg(long, value_enum, default_value = "minilm")]
        model: embed::ModelName,
        /// Where the model's files are (default: $VEXFS_MINILM, or the
        /// copy `make setup` fetched under ~/.cache/vexfs/models).
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// After embedding, follow changes (inotify) until interrupted.
        #[arg(long)]
        watch: bool,
        /// Embed files whose content has not changed too.
        #[arg(long)]
        force: bool,
        /// Only fill the embedding cache (any directory, no VexFS needed),
        /// e.g. on a faster machine before embedding on a slow one.
        #[arg(long, conflicts_with = "watch")]
        cache_only: bool,
        /// The embedding cache (default: $VEXFS_EMBED_CACHE, or
        /// $VEXFS_CACHE/embeddings, or ~/.cache/vexfs/embeddings).
        #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
        cache_dir: Option<PathBuf>,
        /// Neither read nor write the embedding cache.
        #[arg(long)]
        no_cache: bool,
        /// Report progress after each file even when standard error is not
        /// a terminal.
        #[arg(long)]
        progress: bool,
    },
    /// Set the vectors of a regular file in a collection (the first one's id is
    /// the inode number).
    ///
    /// They replace all the file's vectors. A search returns the file once, by
    /// its nearest vector.
    #[command(after_long_help = ATTACH_EXAMPLES)]
    Attach {
        /// Regular file in a collection's tree (the collection directory or below).
        file: PathBuf,
        #[command(flatten)]
        input: FileVectors,
    },
    /// Print a completion script for a shell to standard output.
    ///
    /// `make install` installs them for bash, zsh and fish; this prints the
    /// same scripts, for a shell or a place it does not cover.
    #[command(after_long_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The whole command line, as `vexctl` parses it.
pub fn command() -> clap::Command {
    Cli::command()
}

// Examples of `--help` (not `-h`), and of the man pages' EXAMPLES sections:
// under the heading, each example is a description ending in ':' indented
// by two spaces, then its command lines indented by four (vexfs-man parses
// this layout).

const EXAMPLES: &str = "\
Examples:
  Mount an in-memory VexFS and show the module's version and SIMD path:
    mount -t vexfs none /mnt/vex
    vexctl version /mnt/vex
  Make an HNSW collection, fill it from a .npy file and search it:
    vexctl create /mnt/vex/docs --dim 384 --metric cosine --index hnsw
    vexctl insert /mnt/vex/docs --npy embeddings.npy
    vexctl search /mnt/vex/docs --npy queries.npy -k 10 --json";

const VERSION_EXAMPLES: &str = "\
Examples:
  The module's release, ABI version, CPU features and SIMD path:
    vexctl version /mnt/vex
  The same as one JSON object:
    vexctl version /mnt/vex --json";

const STATS_EXAMPLES: &str = "\
Examples:
  Memory pools, vector memory and this mount's operation counters:
    vexctl stats /mnt/vex
  The same as JSON, from any path on the mount:
    vexctl stats /mnt/vex/docs --json";

const CREATE_EXAMPLES: &str = "\
Examples:
  A flat collection (exact search) of 384-dimensional vectors, by cosine distance:
    vexctl create /mnt/vex/docs --dim 384 --metric cosine
  An HNSW collection (approximate search) with the default M and ef_construction:
    vexctl create /mnt/vex/glove --dim 50 --metric l2 --index hnsw
  An HNSW collection with a denser graph, slower to build and more accurate:
    vexctl create /mnt/vex/glove --dim 50 --metric l2 --index hnsw --m 32 --ef-construction 400
  An HNSW collection whose searches walk the graph on 8-bit codes (exact distances still):
    vexctl create /mnt/vex/docs --dim 384 --metric cosine --index hnsw --quantize sq8";

const INFO_EXAMPLES: &str = "\
Examples:
  Dimension, metric, index, vector count and memory of a collection:
    vexctl info /mnt/vex/docs
  The same as JSON:
    vexctl info /mnt/vex/docs --json";

const INSERT_EXAMPLES: &str = "\
Examples:
  Insert the rows of a (rows, 384) float32 .npy file as ids 0, 1, 2, ...:
    vexctl insert /mnt/vex/docs --npy embeddings.npy
  Add the rows of an .fvecs file after the first 400000, 50000 per request:
    vexctl insert /mnt/vex/docs --fvecs more.fvecs --start-id 400000 --batch 50000
  Log a line per batch while standard error is a file:
    vexctl insert /mnt/vex/docs --npy embeddings.npy --progress 2>insert.log";

const SEARCH_EXAMPLES: &str = "\
Examples:
  The 5 nearest vectors of one query in a 3-dimensional collection:
    vexctl search /mnt/vex/points --vector 0.5,-1,2 -k 5
  The 10 nearest of each row of queries.npy, one JSON line per query, wider HNSW beam:
    vexctl search /mnt/vex/docs --npy queries.npy -k 10 --ef 128 --json
  Exact results on an HNSW collection, e.g. to measure its recall:
    vexctl search /mnt/vex/docs --npy queries.npy -k 10 --exact --json
  Files found by meaning, after `vexctl embed /mnt/vex/docs`:
    vexctl search /mnt/vex/docs --text \"how do I mount a disk\" -k 3
  Only files under guides/ whose user.lang attribute is en:
    vexctl search /mnt/vex/docs --npy query.npy -k 5 --under /mnt/vex/docs/guides --xattr user.lang=en";

const GET_EXAMPLES: &str = "\
Examples:
  The vector with id 17 (and the file it belongs to, if any):
    vexctl get /mnt/vex/docs 17
  The same as JSON:
    vexctl get /mnt/vex/docs 17 --json";

const DELETE_EXAMPLES: &str = "\
Examples:
  Delete three vectors; if one of them is absent, none is deleted:
    vexctl delete /mnt/vex/docs 17 18 42";

const EMBED_EXAMPLES: &str = "\
Examples:
  Give every text file under a 384-d collection its vectors, then search by meaning:
    vexctl create /mnt/vex/docs --dim 384 --metric cosine --index hnsw
    cp -r ~/notes/* /mnt/vex/docs/ && vexctl embed /mnt/vex/docs
    vexctl search /mnt/vex/docs --text \"flame graphs of kernel stacks\" -k 5
  Keep the vectors up to date while files change:
    vexctl embed /mnt/vex/docs --watch";

const ATTACH_EXAMPLES: &str = "\
Examples:
  Give a file in a 3-dimensional collection its vector (its id is the file's inode number):
    vexctl attach /mnt/vex/points/notes.txt --vector 0.5,-1,2
  Attach a (384,) or (1, 384) float32 .npy file as the vector of a document:
    vexctl attach /mnt/vex/docs/report.pdf --npy report.npy
  One vector per chunk of a long text, a (chunks, 384) float32 .npy file:
    vexctl attach /mnt/vex/docs/manual.txt --npy manual-chunks.npy";

const PROFILE_EXAMPLES: &str = "\
Examples:
  Profile every VexFS operation for 5 seconds and write a flame graph:
    vexctl profile --duration 5s --flamegraph /tmp/vexfs.svg
  Searches and inserts on one mount, one JSON object per second:
    vexctl profile --mount /mnt/vex --ops search,insert --json
  Through BPF trampolines only (no tracepoints), or kprobes (the fallback), to compare:
    VEXFS_PROFILE_PROBES=fsession vexctl profile --duration 5s
    VEXFS_PROFILE_PROBES=kprobe vexctl profile --duration 5s";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  Complete vexctl in the running bash:
    source <(vexctl completions bash)
  Install them for zsh (~/.zfunc being on fpath) and fish in your home directory:
    vexctl completions zsh > ~/.zfunc/_vexctl
    vexctl completions fish > ~/.config/fish/completions/vexctl.fish";

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

    /// `line` split as a shell splits words, with double quotes grouping.
    fn shell_words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
        for c in line.chars() {
            match c {
                '"' => (quoted, any) = (!quoted, true),
                c if c.is_whitespace() && !quoted => {
                    if any {
                        words.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                c => (word, any) = (word + &c.to_string(), true),
            }
        }
        if any {
            words.push(word);
        }
        words
    }

    /// The command lines of a subcommand's examples, as argument lists
    /// (shell redirections and what follows them dropped).
    fn example_commands(cmd: &clap::Command) -> Vec<Vec<String>> {
        let text = cmd
            .get_after_long_help()
            .unwrap_or_else(|| panic!("{}: no examples", cmd.get_name()))
            .to_string();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("Examples:"), "{}", cmd.get_name());
        let mut out = Vec::new();
        for line in lines {
            if let Some(command) = line.strip_prefix("    ") {
                out.push(
                    shell_words(command)
                        .into_iter()
                        .take_while(|w| !w.contains('>'))
                        .collect(),
                );
            } else {
                let what = line.strip_prefix("  ").unwrap_or_default();
                assert!(
                    !what.starts_with(' ') && what.ends_with(':'),
                    "{}: {line:?} is neither a description nor a command",
                    cmd.get_name()
                );
            }
        }
        out
    }

    #[test]
    fn every_command_has_examples_that_parse() {
        let top = command();
        let mut seen = 0;
        for sub in top.get_subcommands() {
            let examples = example_commands(sub);
            assert!(!examples.is_empty(), "{}", sub.get_name());
            for words in examples {
                if words[0] != "vexctl" {
                    continue;
                }
                seen += 1;
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{words:?}: {e}");
                }
            }
        }
        assert!(seen > 20, "{seen} example commands");
        for words in example_commands(&top) {
            if words[0] == "vexctl" {
                assert!(Cli::try_parse_from(&words).is_ok(), "{words:?}");
            }
        }
    }

    #[test]
    fn examples_are_in_the_long_help_only() {
        let mut top = command();
        let long = top.render_long_help().to_string();
        assert!(
            long.contains("Examples:\n  Mount an in-memory VexFS"),
            "{long}"
        );
        assert!(!top.render_help().to_string().contains("Examples:"));
        let create = top.find_subcommand_mut("create").unwrap();
        assert!(create
            .render_long_help()
            .to_string()
            .contains("vexctl create /mnt/vex/docs --dim 384 --metric cosine\n"));
        assert!(!create.render_help().to_string().contains("Examples:"));
    }

    #[test]
    fn completions_take_a_shell() {
        let Command::Completions { shell } = parse(&["completions", "zsh"]).unwrap().command else {
            panic!("not completions");
        };
        assert_eq!(shell, Shell::Zsh);
        assert!(parse(&["completions"]).is_err());
        assert!(parse(&["completions", "tcsh"]).is_err());
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
            quantize,
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
            "--quantize",
            "sq8",
        ])
        .unwrap()
        .command
        else {
            panic!("not create");
        };
        assert_eq!(
            (index, m, ef_construction, quantize),
            (
                Some(IndexKind::Hnsw),
                Some(32),
                Some(400),
                Some(Quantize::Sq8)
            )
        );
        let Command::Create { quantize, .. } = parse(&[
            "create", "d", "--dim", "5", "--metric", "dot", "--index", "hnsw",
        ])
        .unwrap()
        .command
        else {
            panic!("not create");
        };
        assert_eq!(quantize, None);
        assert!(parse(&[
            "create",
            "d",
            "--dim",
            "5",
            "--metric",
            "dot",
            "--quantize",
            "sq4"
        ])
        .is_err());

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
