//! `vexfs-man DIR`: writes the man pages of vexctl, mkfs.vexfs and
//! fsck.vexfs into DIR (see the library crate), dated by
//! `SOURCE_DATE_EPOCH` if set.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: vexfs-man DIR");
        return ExitCode::from(2);
    };
    match vexfs_man::write_to(&PathBuf::from(dir), &vexfs_man::date_from_env()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vexfs-man: {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
