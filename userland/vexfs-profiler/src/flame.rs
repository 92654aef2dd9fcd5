//! Sampled stacks folded into `frame;frame;... count` lines and rendered as
//! an SVG flame graph by `inferno`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};

use crate::symbols::KernelSymbols;
use crate::Op;

/// Samples of one stack: the outermost VexFS operation the task was in and
/// the kernel return addresses, innermost first (as `bpf_get_stackid`
/// records them).
pub struct StackSample {
    pub op: Op,
    pub kernel_ips: Vec<u64>,
    pub count: u64,
}

/// Folded stacks, root first: `op;outermost;...;innermost` → samples.
/// Frames are function names; `;` in a name would split a frame, so it is
/// replaced.
pub fn fold(samples: &[StackSample], symbols: &KernelSymbols) -> BTreeMap<String, u64> {
    let mut folded = BTreeMap::new();
    for s in samples {
        let mut line = s.op.name().to_owned();
        for &ip in s.kernel_ips.iter().rev() {
            line.push(';');
            line.push_str(&symbols.name_of(ip).replace(';', ":"));
        }
        *folded.entry(line).or_insert(0) += s.count;
    }
    folded
}

/// Writes folded stacks, one `stack count` line each.
pub fn write_folded(folded: &BTreeMap<String, u64>, out: &mut impl Write) -> std::io::Result<()> {
    for (stack, n) in folded {
        writeln!(out, "{stack} {n}")?;
    }
    Ok(())
}

/// Renders folded stacks as an SVG flame graph.
pub fn write_svg(folded: &BTreeMap<String, u64>, title: &str, out: impl Write) -> Result<()> {
    let lines: Vec<String> = folded.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_owned();
    options.count_name = "samples".to_owned();
    if lines.is_empty() {
        // inferno refuses an empty graph; say so in the picture instead.
        options.title = format!("{title}: no samples inside VexFS operations");
        return inferno::flamegraph::from_lines(
            &mut options,
            ["no-samples 0"].iter().copied(),
            out,
        )
        .context("rendering the flame graph");
    }
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .context("rendering the flame graph")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_fold_root_first_and_merge() {
        let syms = KernelSymbols::parse(
            "ffffffff81000000 T entry_SYSCALL_64\nffffffffc0000000 T vexfs_ioctl_search\t[vexfs]\nffffffffc0000100 T vexfs_simd_batch\t[vexfs]\n",
        );
        let search: Op = "search".parse().unwrap();
        let ips = vec![0xffffffffc0000110, 0xffffffffc0000010, 0xffffffff81000010];
        let samples = [
            StackSample {
                op: search,
                kernel_ips: ips.clone(),
                count: 3,
            },
            StackSample {
                op: search,
                kernel_ips: ips,
                count: 2,
            },
        ];
        let folded = fold(&samples, &syms);
        let want = "search;entry_SYSCALL_64;vexfs_ioctl_search [vexfs];vexfs_simd_batch [vexfs]";
        assert_eq!(folded.get(want), Some(&5));
        let mut text = Vec::new();
        write_folded(&folded, &mut text).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), format!("{want} 5\n"));
        let mut svg = Vec::new();
        write_svg(&folded, "t", &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("vexfs_ioctl_search"));
    }
}
