//! Reading vectors from `.npy` and `.fvecs` files and from `--vector`.
//!
//! Every reader is strict: a file that could be read in more than one way,
//! or only partly, is refused with a one-line reason rather than guessed at,
//! since the ids of inserted vectors are their row numbers.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order};
use vexfs::abi;

/// Vectors as one row-major buffer of `rows * dim` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Vectors {
    pub data: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

/// Where vectors come from, as given on the command line.
#[derive(Clone, Debug)]
pub enum Source {
    Npy(PathBuf),
    Fvecs(PathBuf),
    Literal(String),
}

/// Whether a 1-D `.npy` array is accepted as a single row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    /// Only 2-D arrays `(rows, dim)`.
    Matrix,
    /// 2-D arrays, or a 1-D array `(dim,)` as one row.
    MatrixOrRow,
}

impl Source {
    /// Reads the vectors, checking dimensions and that every value is finite.
    pub fn load(&self, rank: Rank) -> Result<Vectors, Error> {
        match self {
            Source::Npy(p) => read_npy(p, rank),
            Source::Fvecs(p) => read_fvecs(p),
            Source::Literal(s) => parse_vector(s),
        }
    }

    /// How messages name this source: the file, or `--vector`.
    pub fn name(&self) -> String {
        match self {
            Source::Npy(p) | Source::Fvecs(p) => p.display().to_string(),
            Source::Literal(_) => "--vector".to_string(),
        }
    }
}

/// Why input was refused: the source and the reason.
#[derive(Debug)]
pub struct Error {
    source: String,
    reason: String,
}

impl Error {
    fn new(source: impl fmt::Display, reason: impl Into<String>) -> Self {
        Self {
            source: source.to_string(),
            reason: reason.into(),
        }
    }

    fn io(path: &Path, e: &io::Error) -> Self {
        Self::new(path.display(), vexfs::io_error_message(e))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

impl std::error::Error for Error {}

/// `(3, 4)` or `(4,)`, as numpy prints shapes.
fn shape_text(shape: &[u64]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// "dimension (4,)", "dimensions (2, 3, 4)".
fn dimensions(shape: &[u64]) -> String {
    let s = if shape.len() == 1 { "" } else { "s" };
    format!("dimension{s} {}", shape_text(shape))
}

/// Checks a dimension read from a file against the ABI limit.
fn check_dim(dim: u64) -> Result<usize, String> {
    if dim == 0 {
        Err("vectors of dimension 0".into())
    } else if dim > u64::from(abi::MAX_DIM) {
        Err(format!(
            "dimension {dim} is larger than the maximum {}",
            abi::MAX_DIM
        ))
    } else {
        Ok(dim as usize)
    }
}

/// Refuses NaN and infinities, naming the first one's row and column.
fn check_finite(data: &[f32], dim: usize) -> Result<(), String> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(format!(
            "row {}, column {} is {}",
            i / dim,
            i % dim,
            if data[i].is_nan() { "NaN" } else { "infinite" }
        )),
    }
}

/// Decodes little-endian f32s from `reader` into `out` until `n` more are
/// there. `scratch` is reused across calls (one per .fvecs row).
fn read_f32s(
    reader: &mut impl Read,
    n: usize,
    out: &mut Vec<f32>,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    const CHUNK: usize = 16 * 1024;
    let mut left = n;
    while left > 0 {
        let len = left.min(CHUNK) * 4;
        if scratch.len() < len {
            scratch.resize(len, 0);
        }
        let chunk = &mut scratch[..len];
        reader.read_exact(chunk)?;
        out.extend(
            chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        left -= len / 4;
    }
    Ok(())
}

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a little-endian float32, C-order `.npy` array of shape
/// `(rows, dim)` (or `(dim,)` as one row when `rank` allows).
///
/// Data after the array is ignored, as `numpy.load` does.
pub fn read_npy(path: &Path, rank: Rank) -> Result<Vectors, Error> {
    let fail = |reason: String| Error::new(path.display(), reason);
    let file = File::open(path).map_err(|e| Error::io(path, &e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
    let mut reader = BufReader::new(file);

    let mut magic = [0u8; 6];
    match reader.read_exact(&mut magic) {
        Ok(()) if &magic == NPY_MAGIC => {}
        Ok(()) => return Err(fail("not an npy file".into())),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(fail("not an npy file".into()))
        }
        Err(e) => return Err(Error::io(path, &e)),
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, &e))?;
    let npy = NpyFile::new(reader).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => fail("truncated npy header".into()),
        io::ErrorKind::InvalidData => fail(format!("bad npy header: {e}")),
        _ => Error::io(path, &e),
    })?;

    let dtype = match npy.dtype() {
        DType::Plain(ty) => ty.to_string(),
        other => other.descr().replace(", ]", "]"),
    };
    if dtype != "<f4" {
        return Err(fail(format!("dtype is {dtype}, expected <f4 (float32)")));
    }
    if npy.order() == Order::Fortran {
        return Err(fail(
            "array is in Fortran order, expected C order (numpy.ascontiguousarray)".into(),
        ));
    }
    let shape = npy.shape().to_vec();
    let (rows, dim) = match (shape.as_slice(), rank) {
        ([rows, dim], _) => (*rows, *dim),
        ([dim], Rank::MatrixOrRow) => (1, *dim),
        (_, Rank::Matrix) => {
            return Err(fail(format!(
                "array has {} {}, expected 2 (rows, dim)",
                shape.len(),
                dimensions(&shape)
            )))
        }
        (_, Rank::MatrixOrRow) => {
            return Err(fail(format!(
                "array has {} {}, expected 2 (rows, dim) or 1 (dim,)",
                shape.len(),
                dimensions(&shape)
            )))
        }
    };
    if rows == 0 {
        return Err(fail(format!("no rows (shape {})", shape_text(&shape))));
    }
    let dim = check_dim(dim).map_err(fail)?;

    let mut reader = npy.into_inner();
    let data_start = reader.stream_position().map_err(|e| Error::io(path, &e))?;
    let available = file_len.saturating_sub(data_start);
    let needed = rows
        .checked_mul(dim as u64)
        .and_then(|n| n.checked_mul(4))
        .filter(|&bytes| bytes <= available)
        .ok_or_else(|| {
            fail(format!(
                "truncated: shape {} needs {} bytes of data, the file holds {available}",
                shape_text(&shape),
                (u128::from(rows) * dim as u128 * 4)
            ))
        })?;
    // Fits in memory terms: `needed` bytes exist in the file.
    let n = (needed / 4) as usize;
    let mut data = Vec::with_capacity(n);
    read_f32s(&mut reader, n, &mut data, &mut Vec::new()).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => fail("truncated data".into()),
        _ => Error::io(path, &e),
    })?;
    check_finite(&data, dim).map_err(fail)?;
    Ok(Vectors {
        data,
        rows: rows as usize,
        dim,
    })
}

/// Reads an `.fvecs` file: rows of a little-endian i32 dimension followed by
/// that many little-endian f32s, every row of the same dimension.
pub fn read_fvecs(path: &Path) -> Result<Vectors, Error> {
    let fail = |reason: String| Error::new(path.display(), reason);
    let file = File::open(path).map_err(|e| Error::io(path, &e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
    if file_len == 0 {
        return Err(fail("empty file".into()));
    }
    let mut reader = BufReader::new(file);
    let mut data = Vec::new();
    let mut scratch = Vec::new();
    let mut dim = 0usize;
    let mut rows = 0usize;
    loop {
        let mut head = [0u8; 4];
        let got = read_up_to(&mut reader, &mut head).map_err(|e| Error::io(path, &e))?;
        if got == 0 {
            break;
        }
        if got < 4 {
            return Err(fail(format!(
                "row {rows} is truncated: {got} of the 4 bytes of its dimension"
            )));
        }
        let d = i32::from_le_bytes(head);
        if rows == 0 {
            if d <= 0 || d as u32 > abi::MAX_DIM {
                return Err(fail(format!(
                    "row 0 has dimension {d}, expected 1 to {}",
                    abi::MAX_DIM
                )));
            }
            dim = d as usize;
            // Each row takes 4 + 4 * dim bytes: reserve what the file holds.
            let expect_rows = file_len / (4 + 4 * dim as u64);
            data.reserve(expect_rows as usize * dim);
        } else if d as i64 != dim as i64 {
            return Err(fail(format!(
                "row {rows} has dimension {d}, row 0 has {dim}"
            )));
        }
        read_f32s(&mut reader, dim, &mut data, &mut scratch).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                fail(format!("row {rows} is truncated: the file ends inside it"))
            }
            _ => Error::io(path, &e),
        })?;
        rows += 1;
    }
    check_finite(&data, dim).map_err(fail)?;
    Ok(Vectors { data, rows, dim })
}

/// Fills `buf` as far as the reader goes; answers how many bytes it got.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Parses `--vector 1,2.5,-3` into one row.
pub fn parse_vector(text: &str) -> Result<Vectors, Error> {
    let fail = |reason: String| Error::new("--vector", reason);
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    let mut data = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pos = i + 1;
        if item.is_empty() {
            return Err(fail(format!("item {pos} is empty")));
        }
        let v: f32 = item
            .parse()
            .map_err(|_| fail(format!("item {pos} ({item:?}) is not a number")))?;
        if v.is_nan() {
            return Err(fail(format!("item {pos} is NaN")));
        }
        if v.is_infinite() {
            return Err(fail(format!(
                "item {pos} ({item}) is infinite as a float32"
            )));
        }
        data.push(v);
    }
    let dim = check_dim(data.len() as u64).map_err(fail)?;
    Ok(Vectors { data, rows: 1, dim })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::Write;

    /// An `.npy` file as numpy writes it (format 1.0, header padded so the
    /// data starts at a multiple of 64).
    pub fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_with_header(
            &format!(
                "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
                if fortran { "True" } else { "False" }
            ),
            data,
        )
    }

    /// An `.npy` file with the header dictionary `dict`.
    pub fn npy_with_header(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = NPY_MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    fn npy_err(bytes: &[u8], rank: Rank) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "F.npy", bytes);
        let msg = read_npy(&p, rank).unwrap_err().to_string();
        let prefix = format!("{}: ", p.display());
        msg.strip_prefix(&prefix).expect(&msg).to_string()
    }

    #[test]
    fn reads_a_2d_float32_npy() {
        let dir = tempfile::tempdir().unwrap();
        let values = [1.0, 2.0, 3.0, -4.5, 5.25, 6e-3];
        let bytes = npy_bytes("<f4", false, "(2, 3)", &f32_bytes(&values));
        let p = write_file(dir.path(), "a.npy", &bytes);
        let v = read_npy(&p, Rank::Matrix).unwrap();
        assert_eq!((v.rows, v.dim), (2, 3));
        assert_eq!(v.data, values);
    }

    #[test]
    fn reads_npy_written_by_npyz() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npy");
        let values: Vec<f32> = (0..40_000).map(|i| i as f32 * 0.5).collect();
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[10_000, 4])
            .writer(File::create(&p).unwrap())
            .begin_nd()
            .unwrap();
        w.extend(values.iter().copied()).unwrap();
        w.finish().unwrap();
        let v = read_npy(&p, Rank::Matrix).unwrap();
        assert_eq!((v.rows, v.dim), (10_000, 4));
        assert_eq!(v.data, values);
    }

    #[test]
    fn one_dimensional_npy_is_one_row_only_when_allowed() {
        let bytes = npy_bytes("<f4", false, "(3,)", &f32_bytes(&[1.0, 2.0, 3.0]));
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "v.npy", &bytes);
        let v = read_npy(&p, Rank::MatrixOrRow).unwrap();
        assert_eq!(
            (v.rows, v.dim, v.data.as_slice()),
            (1, 3, &[1.0, 2.0, 3.0][..])
        );
        assert_eq!(
            npy_err(&bytes, Rank::Matrix),
            "array has 1 dimension (3,), expected 2 (rows, dim)"
        );
    }

    #[test]
    fn npy_rejections() {
        let four = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello world, not numpy".to_vec(), "not an npy file"),
            (b"\x93NU".to_vec(), "not an npy file"),
            (b"".to_vec(), "not an npy file"),
            (
                npy_bytes("<f8", false, "(2, 2)", &[0; 32]),
                "dtype is <f8, expected <f4 (float32)",
            ),
            (
                npy_bytes(">f4", false, "(2, 2)", &four),
                "dtype is >f4, expected <f4 (float32)",
            ),
            (
                npy_bytes("<i4", false, "(2, 2)", &four),
                "dtype is <i4, expected <f4 (float32)",
            ),
            (
                npy_bytes("<f4", true, "(2, 2)", &four),
                "array is in Fortran order, expected C order (numpy.ascontiguousarray)",
            ),
            (
                npy_bytes("<f4", false, "(1, 2, 2)", &four),
                "array has 3 dimensions (1, 2, 2), expected 2 (rows, dim)",
            ),
            (
                npy_bytes("<f4", false, "()", &four[..4]),
                "array has 0 dimensions (), expected 2 (rows, dim)",
            ),
            (
                npy_bytes("<f4", false, "(2, 2)", &four[..10]),
                "truncated: shape (2, 2) needs 16 bytes of data, the file holds 10",
            ),
            (
                npy_bytes("<f4", false, "(0, 2)", &[]),
                "no rows (shape (0, 2))",
            ),
            (
                npy_bytes("<f4", false, "(2, 0)", &[]),
                "vectors of dimension 0",
            ),
            (
                npy_bytes("<f4", false, "(1, 5000)", &[]),
                "dimension 5000 is larger than the maximum 4096",
            ),
            (
                npy_bytes(
                    "<f4",
                    false,
                    "(2, 2)",
                    &f32_bytes(&[1.0, 2.0, 3.0, f32::NAN]),
                ),
                "row 1, column 1 is NaN",
            ),
            (
                npy_bytes(
                    "<f4",
                    false,
                    "(2, 2)",
                    &f32_bytes(&[1.0, f32::INFINITY, 3.0, 4.0]),
                ),
                "row 0, column 1 is infinite",
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(npy_err(&bytes, Rank::Matrix), want);
        }
        let record = npy_with_header(
            "{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, 'shape': (2,), }",
            &[0; 16],
        );
        assert_eq!(
            npy_err(&record, Rank::MatrixOrRow),
            "dtype is [('x', '<f4'), ('y', '<i4')], expected <f4 (float32)"
        );
        let bad_header = b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4 }\n".to_vec();
        assert!(npy_err(&bad_header, Rank::Matrix).starts_with("bad npy header: "));
        let short_header = b"\x93NUMPY\x01\x00\x40\x00{'descr'".to_vec();
        assert_eq!(npy_err(&short_header, Rank::Matrix), "truncated npy header");
        // A huge shape is refused before any allocation.
        assert_eq!(
            npy_err(
                &npy_bytes("<f4", false, "(100000000000, 4096)", &four),
                Rank::Matrix
            ),
            "truncated: shape (100000000000, 4096) needs 1638400000000000 bytes of data, \
             the file holds 16"
        );
    }

    #[test]
    fn missing_file_is_one_line() {
        let err = read_npy(Path::new("/nonexistent/q.npy"), Rank::Matrix).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/q.npy: no such file or directory"
        );
    }

    fn fvecs_row(d: i32, values: &[f32]) -> Vec<u8> {
        let mut out = d.to_le_bytes().to_vec();
        out.extend(f32_bytes(values));
        out
    }

    fn fvecs_err(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "F.fvecs", bytes);
        let msg = read_fvecs(&p).unwrap_err().to_string();
        let prefix = format!("{}: ", p.display());
        msg.strip_prefix(&prefix).expect(&msg).to_string()
    }

    #[test]
    fn reads_fvecs() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = fvecs_row(3, &[1.0, 2.0, 3.0]);
        bytes.extend(fvecs_row(3, &[4.0, 5.0, 6.5]));
        let p = write_file(dir.path(), "a.fvecs", &bytes);
        let v = read_fvecs(&p).unwrap();
        assert_eq!((v.rows, v.dim), (2, 3));
        assert_eq!(v.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
    }

    #[test]
    fn fvecs_rejections() {
        let row = |d, n: usize| fvecs_row(d, &vec![0.5; n]);
        let mut rows_17 = Vec::new();
        for _ in 0..17 {
            rows_17.extend(row(50, 50));
        }
        let mut differing = rows_17.clone();
        differing.extend(row(49, 49));
        let mut truncated = rows_17.clone();
        truncated.extend(&row(50, 50)[..100]);
        let mut stray = rows_17.clone();
        stray.extend([1, 2]);
        let mut nan = row(2, 2);
        nan.extend(fvecs_row(2, &[1.0, f32::NAN]));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty file"),
            (row(0, 0), "row 0 has dimension 0, expected 1 to 4096"),
            (row(-3, 0), "row 0 has dimension -3, expected 1 to 4096"),
            (row(4097, 1), "row 0 has dimension 4097, expected 1 to 4096"),
            (differing, "row 17 has dimension 49, row 0 has 50"),
            (truncated, "row 17 is truncated: the file ends inside it"),
            (
                stray,
                "row 17 is truncated: 2 of the 4 bytes of its dimension",
            ),
            (nan, "row 1, column 1 is NaN"),
        ];
        for (bytes, want) in cases {
            assert_eq!(fvecs_err(&bytes), want);
        }
    }

    #[test]
    fn parses_vector_literals() {
        let v = parse_vector("1, 2.5,-3e2 ,4").unwrap();
        assert_eq!((v.rows, v.dim), (1, 4));
        assert_eq!(v.data, [1.0, 2.5, -300.0, 4.0]);
        assert_eq!(parse_vector("7").unwrap().data, [7.0]);
    }

    #[test]
    fn vector_literal_rejections() {
        let cases = [
            ("", "--vector: item 1 is empty"),
            ("1,,3", "--vector: item 2 is empty"),
            ("1,2,", "--vector: item 3 is empty"),
            ("1,x,3", "--vector: item 2 (\"x\") is not a number"),
            ("1,2,3 4", "--vector: item 3 (\"3 4\") is not a number"),
            ("1,NaN", "--vector: item 2 is NaN"),
            ("inf,1", "--vector: item 1 (inf) is infinite as a float32"),
            ("1e39", "--vector: item 1 (1e39) is infinite as a float32"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_vector(text).unwrap_err().to_string(),
                want,
                "{text:?}"
            );
        }
        let long = vec!["1"; 4097].join(",");
        assert_eq!(
            parse_vector(&long).unwrap_err().to_string(),
            "--vector: dimension 4097 is larger than the maximum 4096"
        );
    }

    #[test]
    fn sources_load_and_name_themselves() {
        let s = Source::Literal("1,2".into());
        assert_eq!(s.name(), "--vector");
        assert_eq!(s.load(Rank::MatrixOrRow).unwrap().dim, 2);
        assert_eq!(Source::Npy("/x/y.npy".into()).name(), "/x/y.npy");
    }
}
