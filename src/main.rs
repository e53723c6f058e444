//! The `tollgate` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use tollgate::cli::Cli;

/// mimalloc instead of glibc's malloc: allocation is 15-20% of the gateway's work per call,
/// and its frees often happen on another thread than the allocation (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (v3 numbering, checked against its default below).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;
const PURGE_DELAY_MS: std::ffi::c_long = 50;

/// mimalloc keeps freed pages for a second (its arenas ten times as long) before giving them
/// back to the OS; under load that retention was ~9 MB of the gateway's peak RSS. 50 ms keeps
/// the reuse that matters (pages freed and taken again within a burst) and returns the rest:
/// peak RSS at concurrency 50 went from 42 to 35 MB with no change in throughput
/// (docs/PERFORMANCE.md). `MIMALLOC_PURGE_DELAY` in the environment still wins.
#[allow(unsafe_code)]
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_get`/`mi_option_set` read and write an entry of mimalloc's option
    // table (a plain integer, accessed atomically inside mimalloc); any option number is valid
    // input. The default is checked first so that a renumbered option in another mimalloc
    // version is left alone rather than set by mistake.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.num_workers.filter(|n| *n > 0) {
        rt.worker_threads(n);
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(tollgate::app::main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
