//! Turning ABI structures into tables and JSON for the user.

use serde::Serialize;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use vexfs_abi as abi;

/// `vexctl version` as printed.
#[derive(Serialize)]
pub struct Version {
    pub module_version: String,
    pub abi_version: u32,
    pub vexctl_version: &'static str,
    pub cpu_features: Vec<&'static str>,
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
        }
    }

    pub fn table(&self) -> String {
        let rows = [
            ("module version", self.module_version.clone()),
            ("ABI version", self.abi_version.to_string()),
            ("vexctl version", self.vexctl_version.to_string()),
            ("kernel CPU features", self.cpu_features.join(" ")),
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
        }
    }

    pub fn table(&self) -> String {
        format!(
            "memory pools (module-wide)\n{}\n\noperations (this mount, {} inodes)\n{}",
            Table::new(&self.pools).with(Style::sharp()),
            self.inodes,
            Table::new(&self.ops).with(Style::sharp()),
        )
    }
}
