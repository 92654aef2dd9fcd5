// SPDX-License-Identifier: GPL-2.0

//! Model::chunks against the rule in the crate docs.

mod common;

use std::time::Instant;

use vexfs_embed::{Chunking, Model, CHUNK_OVERLAP, CHUNK_TOKENS, MAX_CHUNKS};

// Tokens of `s` without [CLS]/[SEP] (s must fit the window).
fn tokens(model: &Model, s: &str) -> usize {
    let n = model.tokenize(s).unwrap().len() - 2;
    assert!(n < CHUNK_TOKENS + 1);
    n
}

// Every invariant the crate docs promise; returns the chunking.
fn check(model: &Model, text: &str) -> Chunking {
    let chunking = model.chunks(text).unwrap();
    let chunks = &chunking.chunks;
    assert!(chunks.len() <= MAX_CHUNKS);
    for (i, c) in chunks.iter().enumerate() {
        assert!(text.is_char_boundary(c.range.start) && text.is_char_boundary(c.range.end));
        assert!(c.range.start < c.range.end, "chunk {i} is empty");
        assert!(c.tokens <= CHUNK_TOKENS, "chunk {i}: {} tokens", c.tokens);
        // Cut between words: the slice tokenizes to the chunk's tokens.
        assert_eq!(tokens(model, &text[c.range.clone()]), c.tokens, "chunk {i}");
        if i + 1 < chunks.len() || chunking.truncated {
            assert!(
                c.tokens >= CHUNK_TOKENS / 2,
                "chunk {i}: {} tokens",
                c.tokens
            );
        }
    }
    for (i, w) in chunks.windows(2).enumerate() {
        let (a, b) = (&w[0], &w[1]);
        assert!(
            a.range.start < b.range.start && b.range.start < a.range.end,
            "chunks {i}, {}",
            i + 1
        );
        assert!(a.range.end < b.range.end);
        let shared = tokens(model, &text[b.range.start..a.range.end]);
        assert!(
            (1..=CHUNK_OVERLAP).contains(&shared),
            "chunks {i}, {}: {shared} shared",
            i + 1
        );
    }
    // Overlapping chunks cover one stretch; outside it only whitespace.
    if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
        assert!(text[..first.range.start].trim().is_empty());
        assert_eq!(
            text[last.range.end..].trim().is_empty(),
            !chunking.truncated
        );
    } else {
        assert!(text.trim().is_empty());
    }
    chunking
}

const PROSE: [&str; 6] = [
    "The kernel keeps each vector next to the file it describes.",
    "A search walks the graph from the entry point and keeps the nearest candidates!",
    "Why would anyone store embeddings inside a filesystem?",
    "Because a file's vector should be as private as the file itself, and no index outside the kernel can promise that.",
    "Chunks overlap a little, so a sentence cut in two is still whole somewhere.",
    "Numbers like 3.14 and 2,048 are tokens too.",
];

#[test]
fn empty_and_blank_texts_have_no_chunks() {
    let Some(model) = common::model() else { return };
    for text in ["", " ", "\n\n\t \r\n"] {
        assert_eq!(check(model, text), Chunking::default(), "{text:?}");
    }
}

#[test]
fn short_text_is_one_chunk_without_outer_whitespace() {
    let Some(model) = common::model() else { return };
    let text = "  \n Hello, world.  \n";
    let c = check(model, text);
    assert_eq!(c.chunks.len(), 1);
    assert_eq!(&text[c.chunks[0].range.clone()], "Hello, world.");
    assert_eq!(c.chunks[0].tokens, 4);
}

#[test]
fn window_edge() {
    let Some(model) = common::model() else { return };
    let words = |n: usize| vec!["a"; n].join(" ");
    let c = check(model, &words(CHUNK_TOKENS));
    assert_eq!(c.chunks.len(), 1);
    let c = check(model, &words(CHUNK_TOKENS + 1));
    assert_eq!(c.chunks.len(), 2);
    // No better boundary than spaces: the first chunk is full and the
    // second starts CHUNK_OVERLAP tokens before its end.
    assert_eq!(c.chunks[0].tokens, CHUNK_TOKENS);
    assert_eq!(c.chunks[1].tokens, CHUNK_OVERLAP + 1);
}

#[test]
fn text_without_newlines_is_cut_at_sentence_ends() {
    let Some(model) = common::model() else { return };
    let text: Vec<&str> = PROSE.iter().cycle().take(120).copied().collect();
    let text = text.join(" ");
    let c = check(model, &text);
    assert!(c.chunks.len() > 5 && !c.truncated, "{}", c.chunks.len());
    for (i, chunk) in c.chunks.iter().enumerate() {
        let s = &text[chunk.range.clone()];
        assert!(
            s.ends_with(['.', '!', '?']),
            "chunk {i} ends {:?}",
            &s[s.len() - 20..]
        );
        assert!(
            s.starts_with(char::is_uppercase),
            "chunk {i} starts {:?}",
            &s[..20]
        );
    }
}

#[test]
fn documentation_is_cut_at_lines_or_paragraphs() {
    let Some(model) = common::model() else { return };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Documentation");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rst"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut paragraphs = 0;
    let mut cuts = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let c = check(model, &text);
        for chunk in &c.chunks[..c.chunks.len() - 1] {
            let mut lines = text[chunk.range.end..].split('\n');
            let rest = lines.next().unwrap();
            assert!(
                rest.trim().is_empty(),
                "{}: cut before {rest:?}",
                path.display()
            );
            paragraphs += lines.next().is_some_and(|l| l.trim().is_empty()) as usize;
            cuts += 1;
        }
    }
    println!("Documentation/*.rst: {cuts} cuts, {paragraphs} at a blank line");
    assert!(paragraphs * 2 > cuts, "{paragraphs} of {cuts}");
}

#[test]
fn text_without_spaces_is_cut_at_punctuation_or_characters() {
    let Some(model) = common::model() else { return };
    // Each CJK character is a word of its own; so is each punctuation mark.
    check(model, &"日本語のテキストと中文句子".repeat(80));
    check(model, &"foo.bar(baz)=qux;".repeat(200));
}

#[test]
fn huge_text_stops_at_max_chunks() {
    let Some(model) = common::model() else { return };
    let text = PROSE.join("\n").repeat(40_000); // about 15 MB
    let t = Instant::now();
    let c = check(model, &text);
    println!(
        "{} MB: {} chunks in {:.2?}",
        text.len() >> 20,
        c.chunks.len(),
        t.elapsed()
    );
    assert_eq!(c.chunks.len(), MAX_CHUNKS);
    assert!(c.truncated);
}

#[test]
fn one_huge_word_is_one_unknown_token() {
    let Some(model) = common::model() else { return };
    // Longer than the first 512 KiB scan: chunks reads on until it has
    // the word.
    let text = "x".repeat((1 << 20) + 1);
    let c = check(model, &text);
    assert_eq!(c.chunks.len(), 1);
    assert_eq!(c.chunks[0].range, 0..text.len());
}
