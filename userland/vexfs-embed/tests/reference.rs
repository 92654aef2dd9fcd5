// SPDX-License-Identifier: GPL-2.0

//! The Rust pipeline against sentence-transformers' own embeddings of the
//! sentences in reference.json (written by scripts/embed-reference).

mod common;

use serde_json::Value;
use vexfs_embed::{Error, Model, DIM, MAX_TOKENS, MODEL_ID};

struct Sentence {
    text: String,
    tokens: usize,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixture() -> Vec<Sentence> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["model"], MODEL_ID);
    assert_eq!(doc["dim"], DIM);
    assert_eq!(doc["max_seq_length"], MAX_TOKENS);
    doc["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Sentence {
            text: s["text"].as_str().unwrap().to_owned(),
            tokens: s["tokens"].as_u64().unwrap() as usize,
            input_ids: serde_json::from_value(s["input_ids"].clone()).unwrap(),
            embedding: serde_json::from_value(s["embedding"].clone()).unwrap(),
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn fixture_is_varied() {
    let sentences = fixture();
    assert!(sentences.len() >= 12);
    assert!(sentences.iter().any(|s| s.tokens > MAX_TOKENS));
    assert!(sentences.iter().any(|s| s.text.is_empty()));
    assert!(sentences.iter().any(|s| !s.text.is_ascii()));
}

#[test]
fn tokens_match_reference() {
    let Some(model) = common::model() else { return };
    for s in fixture() {
        let ids = model.tokenize(&s.text).unwrap();
        assert_eq!(ids, s.input_ids, "{:?}", s.text);
        assert_eq!(ids.len(), s.tokens.min(MAX_TOKENS), "{:?}", s.text);
    }
}

#[test]
fn embeddings_match_reference() {
    let Some(model) = common::model() else { return };
    let sentences = fixture();
    let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    let t = std::time::Instant::now();
    // All at once: padded batches of mixed lengths, sorted internally.
    let batched = model.embed(&texts).unwrap();
    let mut min = f64::INFINITY;
    for (s, v) in sentences.iter().zip(&batched) {
        assert_eq!(v.len(), DIM);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{:?}: norm {norm}", s.text);
        let alone = model.embed(&[&s.text]).unwrap().remove(0);
        for (how, v) in [("batched", v), ("alone", &alone)] {
            let c = cosine(v, &s.embedding);
            println!(
                "cosine {c:.7} ({how}) {:?}",
                s.text.chars().take(40).collect::<String>()
            );
            assert!(c >= 0.999, "{:?} ({how}): cosine {c} < 0.999", s.text);
            min = min.min(c);
        }
    }
    println!(
        "minimum cosine with sentence-transformers over {} sentences: {min:.9} (1 - {:.1e}) ({:.2?})",
        sentences.len(),
        1.0 - min,
        t.elapsed()
    );
}

// The long sentence's tail, past token 256, is about something else: had
// the crate kept tokenizer.json's 128-token truncation, it would miss.
#[test]
fn fixture_tells_256_from_128_tokens() {
    let Some(model) = common::model() else { return };
    let long = fixture()
        .into_iter()
        .find(|s| s.tokens > MAX_TOKENS)
        .unwrap();
    let words: Vec<&str> = long.text.split(' ').collect();
    let mut n = words.len();
    while model.tokenize(&words[..n].join(" ")).unwrap().len() > 128 {
        n -= 1;
    }
    let short = model.embed(&[&words[..n].join(" ")]).unwrap().remove(0);
    let c = cosine(&short, &long.embedding);
    println!("cosine of the first 128 tokens with the 256-token reference: {c:.4}");
    assert!(c < 0.99, "{c}");
}

#[test]
fn missing_model_names_the_file_and_make_setup() {
    let dir = std::env::temp_dir().join("vexfs-embed-no-such-model");
    let err = Model::load(&dir).unwrap_err();
    assert!(
        matches!(&err, Error::MissingFile { path } if *path == dir.join("config.json")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("config.json") && msg.contains("make setup"),
        "{msg}"
    );
}

/// The weights are read on the first embed: chunking works without them,
/// and a damaged weights file is reported then, by name.
#[test]
fn weights_are_read_on_first_embed() {
    let Some(dir) = vexfs_embed::default_dir().filter(|d| d.join("tokenizer.json").exists()) else {
        eprintln!("skipped: no model (run `make setup`)");
        return;
    };
    let bad = std::env::temp_dir().join(format!("vexfs-embed-bad-weights-{}", std::process::id()));
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir.join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join("model.safetensors"), b"not a safetensors file").unwrap();
    let model = Model::load(&bad).expect("loads without reading the weights");
    let chunking = model.chunks("A short text.").unwrap();
    assert_eq!(chunking.chunks.len(), 1);
    let err = model.embed(&["A short text."]).unwrap_err();
    assert!(
        matches!(&err, Error::Weights { path, .. } if *path == bad.join("model.safetensors")),
        "{err:?}"
    );
    std::fs::remove_dir_all(&bad).unwrap();
}
