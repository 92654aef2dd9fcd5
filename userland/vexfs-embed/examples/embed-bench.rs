// SPDX-License-Identifier: GPL-2.0

//! Embedding throughput on this repository's Documentation/*.rst and
//! README.md, with 1 and 2 threads:
//!
//! ```sh
//! cargo run --release -p vexfs-embed --example embed-bench [MODEL_DIR]
//! ```
//!
//! Without RAYON_NUM_THREADS it runs itself once per thread count with the
//! variable set (rayon sizes its pool from it once per process, and candle
//! its matrix products); with it, it measures that count. The model is
//! loaded from MODEL_DIR or vexfs_embed::default_dir().

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vexfs_embed::{default_dir, Model};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let exe = std::env::current_exe().unwrap();
        for threads in ["1", "2"] {
            let status = Command::new(&exe)
                .args(&args)
                .env("RAYON_NUM_THREADS", threads)
                .status()
                .unwrap();
            assert!(status.success());
        }
        return;
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap();
    let dir = args
        .first()
        .map(PathBuf::from)
        .or_else(default_dir)
        .expect("no model directory: pass one or set VEXFS_MINILM");

    let t = Instant::now();
    let model = Model::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let load = t.elapsed();

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("Documentation"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rst"))
        .collect();
    files.sort();
    files.push(root.join("README.md"));
    let texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();

    let t = Instant::now();
    let mut chunks: Vec<&str> = Vec::new();
    let mut tokens = 0;
    for text in &texts {
        for c in model.chunks(text).unwrap().chunks {
            chunks.push(&text[c.range]);
            tokens += c.tokens + 2; // with [CLS] and [SEP], as the model sees them
        }
    }
    let chunking = t.elapsed();

    let t = Instant::now();
    let vectors = model.embed(&chunks).unwrap();
    let embed = t.elapsed();
    assert_eq!(vectors.len(), chunks.len());

    // One short query, as `vexctl search --text` embeds it: median of 9.
    let mut q: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            model
                .embed(&["how does a power cut affect a mounted disk?"])
                .unwrap();
            t.elapsed()
        })
        .collect();
    q.sort();

    let s = embed.as_secs_f64();
    println!(
        "threads {threads}: model load {:.0} ms; {} files, {} KB, {} chunks, {} tokens; \
         chunking {:.0} ms; embedding {:.2} s = {:.1} chunks/s, {:.0} tokens/s; \
         one query {:.1} ms",
        load.as_secs_f64() * 1e3,
        files.len(),
        bytes / 1000,
        chunks.len(),
        tokens,
        chunking.as_secs_f64() * 1e3,
        s,
        chunks.len() as f64 / s,
        tokens as f64 / s,
        q[4].as_secs_f64() * 1e3,
    );
}
