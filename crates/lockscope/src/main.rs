//! `lockscope`: the command line. A thin layer: it opens inputs, detects what each one is,
//! runs the log reader and the diagnosis engine, and hands the result to a printer.

mod analyze;
mod bt;
mod convert;
mod dis;
mod dump_info;
mod input;
mod kernel_cmds;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lockscope",
    version,
    about = "Explains Linux lockups and hangs from kernel logs: who is stuck, on what, and why"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print text from dumps and logs as it is: no escaping of control characters and
    /// terminal escape sequences (which are shown as `\x1b` by default).
    #[arg(long, global = true)]
    raw: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse kernel logs (dmesg, console, syslog, journal, crash `log`, vmcore-dmesg.txt) and
    /// vmcores (their log and their memory).
    Analyze(analyze::AnalyzeArgs),
    /// Describe vmcores: format, compression, dump level, CPUs and registers, memory, VMCOREINFO.
    DumpInfo(dump_info::DumpInfoArgs),
    /// Rewrite a vmcore as kdump-compressed: another compression, split into files, zero pages once.
    Convert(convert::ConvertArgs),
    #[command(flatten)]
    Kernel(kernel_cmds::KernelCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lockscope_report::escape::set_raw(cli.raw);
    match cli.command {
        Command::Analyze(a) => analyze::run(a),
        Command::DumpInfo(a) => dump_info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Kernel(c) => kernel_cmds::run(c),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("lockscope: {}", lockscope_report::escape::output(msg));
    ExitCode::from(2)
}
