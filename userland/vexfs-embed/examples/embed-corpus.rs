// SPDX-License-Identifier: GPL-2.0

//! Makes the benchmarks' second data set: sentences of a text corpus
//! embedded with all-MiniLM-L6-v2 (384-d unit vectors), written as a
//! float32 `.npy`, with the sentences beside it (one per line, `.txt`):
//!
//! ```sh
//! cargo run --release -p vexfs-embed --example embed-corpus -- \
//!     CORPUS_DIR OUT.npy [MAX_SENTENCES]
//! ```
//!
//! `scripts/bench` runs it on the kernel source's `Documentation/` (the
//! tree `make setup` unpacks). Sentences are taken from the `.rst` and
//! `.txt` files in path order: paragraphs (blank-line separated, markup
//! lines skipped) cut at ". ", kept when 6 to 40 words long, each once,
//! until MAX_SENTENCES (default 50,000). Embedding is the crate's
//! `Model::embed`, so the vectors are the ones `vexctl embed` stores.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vexfs_embed::{default_dir, Model, DIM};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rst" || e == "txt") {
            out.push(p);
        }
    }
}

/// Prose lines only: no directives, tables, titles' underlines, code.
fn is_prose(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && !t.starts_with("..")
        && !t.starts_with(':')
        && !t.starts_with('|')
        && !t.starts_with('+')
        && !t.chars().all(|c| "=-~^*#`'\"_ ".contains(c))
        && !line.starts_with(['\t', ' '])
}

fn sentences(text: &str, seen: &mut HashSet<String>, out: &mut Vec<String>, max: usize) {
    for para in text.split("\n\n") {
        let joined: Vec<&str> = para.lines().filter(|l| is_prose(l)).collect();
        let joined = joined.join(" ");
        for s in joined.split(". ") {
            let words: Vec<&str> = s.split_whitespace().collect();
            if !(6..=40).contains(&words.len()) {
                continue;
            }
            let s = words.join(" ");
            if out.len() < max && seen.insert(s.clone()) {
                out.push(s);
            }
        }
    }
}

fn write_npy(path: &Path, rows: usize, values: &[f32]) -> std::io::Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {DIM}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for v in values {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(corpus), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: embed-corpus CORPUS_DIR OUT.npy [MAX_SENTENCES]");
        std::process::exit(2);
    };
    let max: usize = args.get(2).map_or(50_000, |m| m.parse().expect("a count"));
    let mut paths = Vec::new();
    files(Path::new(corpus), &mut paths);
    let (mut seen, mut texts) = (HashSet::new(), Vec::new());
    for p in &paths {
        if texts.len() >= max {
            break;
        }
        if let Ok(text) = std::fs::read_to_string(p) {
            sentences(&text, &mut seen, &mut texts, max);
        }
    }
    eprintln!("{} sentences from {} files", texts.len(), paths.len());
    let dir = default_dir().expect("no model directory: set VEXFS_MINILM or HOME");
    let model = Model::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let mut values = Vec::with_capacity(texts.len() * DIM);
    for (i, batch) in texts.chunks(256).enumerate() {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        for v in model.embed(&refs).unwrap_or_else(|e| panic!("{e}")) {
            values.extend(v);
        }
        if i % 20 == 19 {
            eprintln!(
                "  {} embedded, {:.0} s",
                values.len() / DIM,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let out = Path::new(out);
    let tmp = out.with_extension("npy.part");
    write_npy(&tmp, texts.len(), &values).expect("writing the .npy");
    std::fs::write(out.with_extension("txt"), texts.join("\n") + "\n")
        .expect("writing the sentences");
    std::fs::rename(&tmp, out).expect("renaming the .npy");
    eprintln!(
        "wrote {} ({} x {DIM}) in {:.0} s of embedding",
        out.display(),
        texts.len(),
        t.elapsed().as_secs_f64()
    );
}
