//! Kernel symbolisation from `/proc/kallsyms` (vmlinux and modules), with
//! Rust names demangled.

use std::fmt::Write as _;
use std::fs;
use std::io;

/// Text symbols of the running kernel, sorted by address.
pub struct KernelSymbols {
    /// (address, name, module) of every text symbol.
    syms: Vec<(u64, String, Option<String>)>,
    /// (start, end) of each loaded module, from `/proc/modules`: an address
    /// past a module's last function is not that function's (kprobe
    /// trampoline pages, for one, sit between modules).
    modules: Vec<(String, u64, u64)>,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`. Addresses read as zero (no `CAP_SYSLOG`, or
    /// `kptr_restrict`) make symbolisation impossible: that is an error.
    pub fn load() -> io::Result<KernelSymbols> {
        let text = fs::read_to_string("/proc/kallsyms")?;
        let mut syms = KernelSymbols::parse(&text);
        syms.modules = parse_modules(&fs::read_to_string("/proc/modules").unwrap_or_default());
        if syms.syms.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "/proc/kallsyms shows no addresses (needs CAP_SYSLOG and kernel.kptr_restrict < 2)",
            ));
        }
        Ok(syms)
    }

    /// Parses kallsyms text: `ADDR TYPE NAME [MODULE]` per line; keeps text
    /// symbols (`t`/`T`, weak `w`/`W`) with non-zero addresses.
    pub fn parse(text: &str) -> KernelSymbols {
        let mut syms: Vec<(u64, String, Option<String>)> = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                let module = f
                    .next()
                    .map(|m| m.trim_matches(|c| c == '[' || c == ']').to_owned());
                // Text symbols, weak ones (`W`/`w`) included.
                let text = matches!(kind, "t" | "T" | "w" | "W");
                (addr != 0 && text).then(|| (addr, name.to_owned(), module))
            })
            .collect();
        syms.sort_by_key(|s| s.0);
        KernelSymbols {
            syms,
            modules: Vec::new(),
        }
    }

    /// Whether `addr` lies outside the loaded extent of `module` (unknown
    /// modules are given the benefit of the doubt).
    fn outside_module(&self, module: &str, addr: u64) -> bool {
        self.modules
            .iter()
            .find(|m| m.0 == module)
            .is_some_and(|&(_, start, end)| addr < start || addr >= end)
    }

    /// Name of the function containing `addr` (demangled; module functions
    /// marked `[module]`), or the address in hex.
    pub fn name_of(&self, addr: u64) -> String {
        let i = self.syms.partition_point(|s| s.0 <= addr);
        let Some((_, name, module)) = i.checked_sub(1).map(|i| &self.syms[i]) else {
            return format!("{addr:#x}");
        };
        if module
            .as_deref()
            .is_some_and(|m| self.outside_module(m, addr))
        {
            return format!("{addr:#x}");
        }
        let mut out = demangle(name);
        if let Some(m) = module {
            let _ = write!(out, " [{m}]");
        }
        out
    }

    /// Address of the function named `name`, if the kernel has one.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| s.1 == name).map(|s| s.0)
    }

    /// Whether the running kernel has a function named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.syms.iter().any(|s| s.1 == name)
    }
}

/// `/proc/modules` lines: `NAME SIZE REFS DEPS STATE ADDRESS ...`.
fn parse_modules(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let size: u64 = f.get(1)?.parse().ok()?;
            let start = u64::from_str_radix(f.get(5)?.trim_start_matches("0x"), 16).ok()?;
            (start != 0).then(|| (f[0].to_owned(), start, start + size))
        })
        .collect()
}

/// Rust (v0 or legacy) names demangled without their hash; others as they are.
pub fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
0000000000000000 T zero_is_hidden
ffffffff81000000 T _stext
ffffffff81000100 t do_syscall_64
ffffffff81001000 D some_data
ffffffffc0001000 t _RNvNtCs1234_10vexfs_main10collection6search\t[vexfs]
ffffffffc0002000 T vexfs_ioctl_search\t[vexfs]
";

    #[test]
    fn addresses_resolve_to_the_enclosing_text_symbol() {
        let s = KernelSymbols::parse(KALLSYMS);
        assert_eq!(s.name_of(0xffffffff81000150), "do_syscall_64");
        assert_eq!(s.name_of(0xffffffffc0002010), "vexfs_ioctl_search [vexfs]");
        assert_eq!(
            s.name_of(0xffffffffc0001004),
            "vexfs_main::collection::search [vexfs]"
        );
        assert_eq!(s.name_of(0x10), "0x10");
        assert!(s.contains("vexfs_ioctl_search"));
        assert_eq!(s.address_of("do_syscall_64"), Some(0xffffffff81000100));
        let mut bounded = KernelSymbols::parse(KALLSYMS);
        bounded.modules = parse_modules("vexfs 12288 0 - Live 0xffffffffc0000000 (O)\n");
        assert_eq!(
            bounded.name_of(0xffffffffc0002010),
            "vexfs_ioctl_search [vexfs]"
        );
        assert_eq!(bounded.name_of(0xffffffffc0003000), "0xffffffffc0003000");
        assert!(!s.contains("some_data"));
        assert!(!s.contains("zero_is_hidden"));
    }
}
