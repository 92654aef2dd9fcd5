//! `vexctl`: the command-line front end of VexFS (see the library crate).

fn main() -> std::process::ExitCode {
    vexctl::main()
}
