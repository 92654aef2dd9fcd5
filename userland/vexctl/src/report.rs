//! Turning ABI structures into tables and JSON for the user.

use serde::Serialize;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use vexfs::abi;

/// `vexctl version` as printed.
#[derive(Serialize)]
pub struct Version {
    pub module_version: String,
    pub abi_version: u32,
    pub vexctl_version: &'static str,
    pub cpu_features: Vec<&'static str>,
    /// Distance kernels the module uses (scalar, avx2, avx512).
    pub simd_path: String,
}

impl Version {
    pub fn new(info: &abi::VersionInfo) -> Self {
        let end = info
            .module_version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.module_version.len());
        Self {
            module_version: String::from_utf8_lossy(&info.module_version[..end]).into_owned(),
            abi_version: info.abi_version,
            vexctl_version: env!("CARGO_PKG_VERSION"),
            cpu_features: abi::cpu::NAMES
                .iter()
                .filter(|(bit, _)| info.cpu_features & bit != 0)
                .map(|&(_, name)| name)
                .collect(),
            simd_path: known_or_number(
                abi::simd_path::NAMES.get(info.simd_path as usize).copied(),
                info.simd_path,
            ),
        }
    }

    pub fn table(&self) -> String {
        let rows = [
            ("module version", self.module_version.clone()),
            ("ABI version", self.abi_version.to_string()),
            ("vexctl version", self.vexctl_version.to_string()),
            ("kernel CPU features", self.cpu_features.join(" ")),
            ("SIMD path", self.simd_path.clone()),
        ];
        Table::new(rows.iter().map(|(k, v)| KeyValue { key: k, value: v }))
            .with(Style::sharp())
            .to_string()
    }
}

#[derive(Tabled)]
struct KeyValue<'a> {
    #[tabled(rename = "property")]
    key: &'a str,
    value: &'a str,
}

/// One row of the pool table.
#[derive(Serialize, Tabled)]
pub struct PoolRow {
    pub tier: String,
    pub object_size: u64,
    pub allocs: u64,
    pub frees: u64,
    pub in_use: u64,
    pub high_water: u64,
    pub bytes_in_use: u64,
    pub failures: u64,
}

/// One row of the operation table.
#[derive(Serialize, Tabled)]
pub struct OpRow {
    pub op: &'static str,
    pub count: u64,
}

/// `vexctl stats` as printed.
#[derive(Serialize)]
pub struct Stats {
    pub inodes: u64,
    pub pools: Vec<PoolRow>,
    pub ops: Vec<OpRow>,
    /// Vector memory in use, all mounts.
    pub vector_bytes: u64,
    /// Its limit (module parameter `max_vector_mib`).
    pub vector_bytes_limit: u64,
    /// Memory held by vector calls in progress, all mounts.
    pub inflight_bytes: u64,
}

impl Stats {
    pub fn new(s: &abi::Stats) -> Self {
        let pools = s
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| PoolRow {
                tier: match abi::POOL_TIER_SIZES.get(i) {
                    Some(size) => format!("{} KiB", size / 1024),
                    None => "kvmalloc (> 16 KiB)".to_string(),
                },
                object_size: p.object_size,
                allocs: p.allocs,
                frees: p.frees,
                in_use: p.in_use,
                high_water: p.high_water,
                bytes_in_use: p.bytes_in_use,
                failures: p.failures,
            })
            .collect();
        // Only the classes both this tool and the module know.
        let known = (s.op_count as usize).min(abi::OP_COUNT);
        let ops = abi::OP_NAMES[..known]
            .iter()
            .zip(&s.ops)
            .map(|(&op, &count)| OpRow { op, count })
            .collect();
        Self {
            inodes: s.inodes,
            pools,
            ops,
            vector_bytes: s.vector_bytes,
            vector_bytes_limit: s.vector_bytes_limit,
            inflight_bytes: s.inflight_bytes,
        }
    }

    pub fn table(&self) -> String {
        format!(
            "memory pools (module-wide)\n{}\n\nvector memory (module-wide): {} of {} \
             (max_vector_mib), {} in calls in progress\n\noperations (this mount, {} inodes)\n{}",
            Table::new(&self.pools).with(Style::sharp()),
            human_bytes(self.vector_bytes),
            human_bytes(self.vector_bytes_limit),
            human_bytes(self.inflight_bytes),
            self.inodes,
            Table::new(&self.ops).with(Style::sharp()),
        )
    }
}

/// Bytes in binary units with one decimal, e.g. "1.5 MiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Name of an enumerated ABI value, or the number when this tool does not
/// know it (a newer module).
fn known_or_number(name: Option<&'static str>, value: u32) -> String {
    name.map_or_else(|| format!("unknown ({value})"), str::to_string)
}

/// `vexctl info` as printed. The HNSW fields are 0 for a flat collection.
#[derive(Serialize)]
pub struct Info {
    pub path: String,
    pub dim: u32,
    pub metric: String,
    pub index: String,
    /// HNSW `M`.
    pub m: u32,
    /// HNSW beam width while inserting.
    pub ef_construction: u32,
    /// How the HNSW walk reads the vectors: `none` or `sq8` (`none` for a
    /// flat collection).
    pub quantize: String,
    pub count: u64,
    pub file_vectors: u64,
    pub memory_bytes: u64,
    /// Bytes of `memory_bytes` that are the HNSW graph (and, with sq8,
    /// its codes and quantizer).
    pub index_bytes: u64,
    /// Deleted or replaced vectors whose graph nodes await repair.
    pub deleted_pending: u64,
    /// Vectors stored but not yet linked into the graph (found by an
    /// exact scan meanwhile).
    pub unindexed: u64,
}

impl Info {
    pub fn new(path: &std::path::Path, info: &abi::CollectionInfo) -> Self {
        Self {
            path: path.display().to_string(),
            dim: info.dim,
            metric: known_or_number(
                vexfs::Metric::from_abi(info.metric).map(vexfs::Metric::name),
                info.metric,
            ),
            index: known_or_number(
                vexfs::IndexKind::from_abi(info.index).map(vexfs::IndexKind::name),
                info.index,
            ),
            m: info.m,
            ef_construction: info.ef_construction,
            quantize: known_or_number(
                vexfs::Quantize::from_abi(info.quantize).map(vexfs::Quantize::name),
                info.quantize,
            ),
            count: info.count,
            file_vectors: info.file_vectors,
            memory_bytes: info.memory_bytes,
            index_bytes: info.index_bytes,
            deleted_pending: info.deleted_pending,
            unindexed: info.unindexed,
        }
    }

    /// The HNSW rows appear for any collection that is not flat.
    pub fn table(&self) -> String {
        let bytes = |b: u64| format!("{b} ({})", human_bytes(b));
        let mut rows = vec![
            ("path", self.path.clone()),
            ("dim", self.dim.to_string()),
            ("metric", self.metric.clone()),
            ("index", self.index.clone()),
        ];
        let hnsw = self.index != "flat";
        if hnsw {
            rows.push(("M", self.m.to_string()));
            rows.push(("ef_construction", self.ef_construction.to_string()));
            rows.push(("quantize", self.quantize.clone()));
        }
        rows.extend([
            ("count", self.count.to_string()),
            ("file_vectors", self.file_vectors.to_string()),
            ("memory_bytes", bytes(self.memory_bytes)),
        ]);
        if hnsw {
            rows.extend([
                ("index_bytes", bytes(self.index_bytes)),
                ("deleted_pending", self.deleted_pending.to_string()),
                ("unindexed", self.unindexed.to_string()),
            ]);
        }
        Table::new(rows.iter().map(|(k, v)| KeyValue { key: k, value: v }))
            .with(Style::sharp())
            .to_string()
    }
}

/// One search hit as printed.
#[derive(Serialize)]
pub struct Hit {
    /// The vector's id; for a file, its inode number.
    pub id: u64,
    pub distance: f32,
    /// For a file, which of its vectors was nearest (0 for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// Path of the file relative to the collection, for file hits whose
    /// file was found.
    pub name: Option<String>,
    /// Whether the kernel flagged it as a file's vector.
    #[serde(skip)]
    pub file: bool,
}

/// A search's answer to one query, printed as one JSON line or a table.
pub trait Printed {
    fn json_line(&self) -> String;
    fn table(&self) -> String;
}

/// One hit of `search --text`: a file, its distance, which chunk was
/// nearest and that chunk's first line.
#[derive(Serialize)]
pub struct TextHit {
    /// The file's inode number (or a plain vector's id).
    pub id: u64,
    pub distance: f32,
    /// The nearest chunk's index.
    pub part: u32,
    /// Path relative to the collection, if found.
    pub name: Option<String>,
    /// First line of the nearest chunk, if the file could be read.
    pub line: Option<String>,
}

/// The answer of `search --text`, as one JSON line or one table.
#[derive(Serialize)]
pub struct TextResult {
    pub query: String,
    pub results: Vec<TextHit>,
}

#[derive(Tabled)]
struct TextRow {
    rank: usize,
    distance: String,
    file: String,
    #[tabled(rename = "nearest chunk begins")]
    line: String,
}

impl TextResult {
    /// The hits of the question `query`, files named from `names` (inode ->
    /// path) and their chunk's first line from `line(ino, part)`.
    pub fn new(
        query: &str,
        hits: &[vexfs::Hit],
        names: &std::collections::HashMap<u64, std::path::PathBuf>,
        mut line: impl FnMut(u64, u32) -> Option<String>,
    ) -> Self {
        let results = hits
            .iter()
            .map(|h| {
                let ino = h.ino();
                TextHit {
                    id: ino.unwrap_or(h.id()),
                    distance: h.distance(),
                    part: h.part(),
                    name: ino
                        .and_then(|i| names.get(&i))
                        .map(|p| p.to_string_lossy().into_owned()),
                    line: ino.and_then(|i| line(i, h.part())),
                }
            })
            .collect();
        Self {
            query: query.to_string(),
            results,
        }
    }
}

impl Printed for TextResult {
    /// One line of JSON: `{"query": text, "results": [{"id", "distance",
    /// "part", "name", "line"}]}`.
    fn json_line(&self) -> String {
        serde_json::to_string(self).expect("search results serialize")
    }

    fn table(&self) -> String {
        if self.results.is_empty() {
            return format!("{:?}: no files found", self.query);
        }
        let rows = self.results.iter().enumerate().map(|(i, h)| TextRow {
            rank: i + 1,
            distance: format!("{:.4}", h.distance),
            file: h
                .name
                .clone()
                .unwrap_or_else(|| format!("(inode {})", h.id)),
            line: h.line.clone().unwrap_or_default(),
        });
        format!(
            "{:?}\n{}",
            self.query,
            Table::new(rows).with(Style::sharp())
        )
    }
}

/// The hits of one query, as one JSON line or one table.
#[derive(Serialize)]
pub struct QueryResult {
    pub query: usize,
    pub results: Vec<Hit>,
}

#[derive(Tabled)]
struct HitRow {
    rank: usize,
    id: u64,
    distance: String,
    name: String,
}

impl QueryResult {
    /// Query `query`'s hits, file hits named from `names` (inode -> path).
    pub fn new(
        query: usize,
        hits: &[vexfs::Hit],
        names: &std::collections::HashMap<u64, std::path::PathBuf>,
    ) -> Self {
        let results = hits
            .iter()
            .map(|h| {
                let file = h.ino();
                Hit {
                    id: file.unwrap_or(h.id()),
                    distance: h.distance(),
                    part: file.map(|_| h.part()),
                    name: file
                        .and_then(|ino| names.get(&ino))
                        .map(|p| p.to_string_lossy().into_owned()),
                    file: file.is_some(),
                }
            })
            .collect();
        Self { query, results }
    }
}

impl Printed for QueryResult {
    /// One line of JSON: `{"query": i, "results": [{"id", "distance", "name"}]}`.
    fn json_line(&self) -> String {
        serde_json::to_string(self).expect("search results serialize")
    }

    fn table(&self) -> String {
        if self.results.is_empty() {
            return format!("query {}: no results (the collection is empty)", self.query);
        }
        let rows = self.results.iter().enumerate().map(|(i, h)| HitRow {
            rank: i + 1,
            id: h.id,
            distance: h.distance.to_string(),
            name: match (&h.name, h.file) {
                (Some(name), _) => name.clone(),
                (None, true) => "(file not found)".into(),
                (None, false) => String::new(),
            },
        });
        format!(
            "query {}\n{}",
            self.query,
            Table::new(rows).with(Style::sharp())
        )
    }
}

/// `vexctl get` as printed.
#[derive(Serialize)]
pub struct Vector {
    pub id: u64,
    pub file: bool,
    pub vector: Vec<f32>,
    /// The file's path relative to the collection, when found.
    #[serde(skip)]
    pub name: Option<String>,
}

impl Vector {
    /// The vector as `--vector` takes it: comma-separated, each value in
    /// the shortest form that reads back as the same f32.
    pub fn values(&self) -> String {
        let items: Vec<String> = self.vector.iter().map(f32::to_string).collect();
        items.join(",")
    }

    pub fn text(&self) -> String {
        let owner = match (&self.name, self.file) {
            (Some(name), _) => format!("the vector of file {name}"),
            (None, true) => "the vector of a file (not found under the collection)".into(),
            (None, false) => "not a file's vector".into(),
        };
        format!(
            "id {}, dim {}, {owner}\n{}",
            self.id,
            self.vector.len(),
            self.values()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    #[test]
    fn version_names_the_simd_path() {
        let mut info = abi::VersionInfo {
            abi_version: 1,
            cpu_features: abi::cpu::SSE2 | abi::cpu::AVX2,
            simd_path: abi::simd_path::AVX2,
            ..Default::default()
        };
        info.module_version[..5].copy_from_slice(b"0.1.0");
        let v = Version::new(&info);
        assert_eq!(v.module_version, "0.1.0");
        assert_eq!(v.cpu_features, ["sse2", "avx2"]);
        assert_eq!(v.simd_path, "avx2");
        assert!(v.table().contains("SIMD path"));
        info.simd_path = 7;
        assert_eq!(Version::new(&info).simd_path, "unknown (7)");
    }

    #[test]
    fn stats_show_vector_memory() {
        let raw = abi::Stats {
            vector_bytes: 3 << 20,
            vector_bytes_limit: 1 << 30,
            inflight_bytes: 5 << 10,
            inodes: 1,
            op_count: abi::OP_COUNT as u32,
            ..Default::default()
        };
        let s = Stats::new(&raw);
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(json["vector_bytes"], 3 << 20);
        assert_eq!(json["vector_bytes_limit"], 1 << 30);
        assert_eq!(json["ops"].as_array().unwrap().len(), abi::OP_COUNT);
        assert_eq!(json["inflight_bytes"], 5 << 10);
        assert!(s.table().contains(
            "vector memory (module-wide): 3.0 MiB of 1.0 GiB (max_vector_mib), 5.0 KiB in calls in progress"
        ));
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn info_names_metric_and_index() {
        let raw = abi::CollectionInfo {
            dim: 50,
            metric: abi::metric::COSINE,
            index: abi::index::FLAT,
            count: 400_000,
            file_vectors: 3,
            memory_bytes: 1536 * 1024,
            ..Default::default()
        };
        let info = Info::new(Path::new("/mnt/c"), &raw);
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"path":"/mnt/c","dim":50,"metric":"cosine","index":"flat","m":0,"ef_construction":0,"quantize":"none","count":400000,"file_vectors":3,"memory_bytes":1572864,"index_bytes":0,"deleted_pending":0,"unindexed":0}"#
        );
        let table = info.table();
        assert!(table.contains("1572864 (1.5 MiB)"), "{table}");
        assert!(table.contains("cosine"), "{table}");
        assert!(!table.contains("ef_construction"), "{table}");
        let odd = abi::CollectionInfo {
            metric: 9,
            index: 7,
            quantize: 5,
            ..raw
        };
        let info = Info::new(Path::new("/mnt/c"), &odd);
        assert_eq!(
            (
                info.metric.as_str(),
                info.index.as_str(),
                info.quantize.as_str()
            ),
            ("unknown (9)", "unknown (7)", "unknown (5)")
        );
    }

    #[test]
    fn info_shows_the_hnsw_index() {
        let raw = abi::CollectionInfo {
            dim: 50,
            metric: abi::metric::L2,
            index: abi::index::HNSW,
            m: 16,
            ef_construction: 200,
            quantize: abi::quantize::SQ8,
            count: 20_000,
            memory_bytes: 8 << 20,
            index_bytes: 3 << 20,
            deleted_pending: 150,
            unindexed: 7,
            ..Default::default()
        };
        let info = Info::new(Path::new("/mnt/g"), &raw);
        let json: serde_json::Value = serde_json::to_value(&info).unwrap();
        assert_eq!(json["index"], "hnsw");
        assert_eq!(json["m"], 16);
        assert_eq!(json["ef_construction"], 200);
        assert_eq!(json["quantize"], "sq8");
        assert_eq!(json["index_bytes"], 3 << 20);
        assert_eq!(json["deleted_pending"], 150);
        assert_eq!(json["unindexed"], 7);
        let table = info.table();
        for want in [
            "hnsw",
            "│ M ",
            "ef_construction │ 200",
            "quantize        │ sq8",
            "index_bytes     │ 3145728 (3.0 MiB)",
            "deleted_pending │ 150",
            "unindexed       │ 7",
        ] {
            assert!(table.contains(want), "{want} missing in\n{table}");
        }
    }

    fn hit(id: u64, distance: f32, flags: u32) -> vexfs::Hit {
        vexfs::Hit::from(abi::SearchHit {
            id,
            distance,
            flags,
        })
    }

    #[test]
    fn search_json_lines_have_exact_keys_and_null_names() {
        let names = HashMap::from([(77, PathBuf::from("docs/a.txt"))]);
        let hits = [
            hit(3, 0.5, 0),
            hit(77, 1.25, abi::HIT_FILE),
            hit(abi::file_vector_id(78, 2), 2.0, abi::HIT_FILE),
        ];
        let q = QueryResult::new(4, &hits, &names);
        assert_eq!(
            q.json_line(),
            r#"{"query":4,"results":[{"id":3,"distance":0.5,"name":null},{"id":77,"distance":1.25,"part":0,"name":"docs/a.txt"},{"id":78,"distance":2.0,"part":2,"name":null}]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&q.json_line()).unwrap();
        assert_eq!(v["results"][0]["name"], serde_json::Value::Null);
        assert!(!q.json_line().contains('\n'));
        let empty = QueryResult::new(0, &[], &names);
        assert_eq!(empty.json_line(), r#"{"query":0,"results":[]}"#);
    }

    #[test]
    fn search_tables_show_rank_and_names() {
        let names = HashMap::from([(77, PathBuf::from("docs/a.txt"))]);
        let hits = [
            hit(3, 0.1, 0),
            hit(77, 0.2, abi::HIT_FILE),
            hit(9, 0.3, abi::HIT_FILE),
        ];
        let table = QueryResult::new(1, &hits, &names).table();
        assert!(table.starts_with("query 1\n"), "{table}");
        for want in ["rank", "distance", "docs/a.txt", "(file not found)", "0.1"] {
            assert!(table.contains(want), "{want} missing in\n{table}");
        }
        assert_eq!(
            QueryResult::new(2, &[], &names).table(),
            "query 2: no results (the collection is empty)"
        );
    }

    #[test]
    fn vectors_print_in_full_precision() {
        let v = Vector {
            id: 42,
            file: false,
            vector: vec![0.1, -2.0, 1.0e-7, 123456.79],
            name: None,
        };
        assert_eq!(v.values(), "0.1,-2,0.0000001,123456.79");
        assert_eq!(
            v.text(),
            "id 42, dim 4, not a file's vector\n0.1,-2,0.0000001,123456.79"
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"id":42,"file":false,"vector":[0.1,-2.0,1e-7,123456.79]}"#
        );
        let f = Vector {
            file: true,
            name: Some("x/y".into()),
            ..v
        };
        assert!(f
            .text()
            .starts_with("id 42, dim 4, the vector of file x/y\n"));
        // What `get` prints, `--vector` reads back to the same values.
        let back = crate::input::parse_vector(&f.values()).unwrap();
        assert_eq!(back.data, f.vector);
    }
}
