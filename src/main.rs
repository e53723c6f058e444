//! The `tollgate` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use tollgate::cli::Cli;

/// mimalloc instead of glibc's malloc: allocation is 15-20% of the gateway's work per call,
/// and its frees often happen on another thread than the allocation (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// mimalloc entered the way C calls it. The `mimalloc` crate's allocator sends every request
/// through `mi_malloc_aligned`, whose alignment checks and extra frames cost ~25 instructions
/// per allocation (~120 a call, docs/PERFORMANCE.md). A layout whose alignment is at most 16
/// and at most its size is what plain `mi_malloc` already guarantees: mimalloc's size classes
/// of 16 bytes and more are multiples of 16 on 16-aligned pages, smaller requests get 8- or
/// 16-byte blocks (std's `System` allocator makes the same choice for `malloc`), so only rarer
/// layouts take the aligned entry points.
struct MiMalloc;

/// `MI_MAX_ALIGN_SIZE` on 64-bit targets: every mimalloc block of at least this size is
/// aligned to it, smaller blocks to 8 or 16.
const MI_MIN_ALIGN: usize = 16;

fn plain(layout_align: usize, size: usize) -> bool {
    layout_align <= MI_MIN_ALIGN && layout_align <= size
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks of both
// the plain and the aligned entry points); the plain entry points are used only for layouts
// whose alignment they guarantee (see `plain`), the aligned ones otherwise, so each returned
// pointer is null or satisfies the layout, as `GlobalAlloc` requires.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: see the impl; mimalloc accepts any size and power-of-two alignment.
        unsafe {
            if plain(layout.align(), layout.size()) {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                libmimalloc_sys::mi_zalloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` was returned by this allocator, so by mimalloc.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from mimalloc with `layout`; the new block keeps its alignment
        // by the same rule as `alloc`.
        unsafe {
            if plain(layout.align(), new_size) {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

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
    // The gateway serves HTTP on one single-threaded event loop per core (`--num_workers`,
    // `server::serve_on_threads`): this one, on the main thread, which also carries start-up
    // and the background tasks, and one on a thread of its own for each other core.
    let mut rt = if cli.command.is_none() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    rt.enable_all();
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

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::MiMalloc;

    /// Every layout shape the allocator splits on — alignment below, at and above 16, sizes
    /// below and above it — comes back aligned, keeps its bytes through `realloc` (growing
    /// and shrinking across the split) and is zeroed by `alloc_zeroed`.
    #[test]
    #[allow(unsafe_code)]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = MiMalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 15, 16, 17, 24, 40, 100, 1000, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes, power-of-two alignments; each block is freed once
                // with the layout it has at that point.
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert!(
                        !z.is_null() && (z as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                    a.dealloc(z, layout);

                    let mut p = a.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    for i in 0..size {
                        *p.add(i) = (i % 251) as u8;
                    }
                    // Grow, then shrink below 16, then back: the bytes both sizes hold stay.
                    let mut current = layout;
                    let mut valid = size;
                    for new_size in [size * 3 + 5, 7, size] {
                        p = a.realloc(p, current, new_size);
                        assert!(
                            !p.is_null() && (p as usize).is_multiple_of(align),
                            "{size}->{new_size}/{align}"
                        );
                        valid = valid.min(new_size);
                        for i in 0..valid {
                            assert_eq!(*p.add(i), (i % 251) as u8, "{size}->{new_size}/{align}");
                        }
                        current = Layout::from_size_align(new_size, align).unwrap();
                    }
                    a.dealloc(p, current);
                }
            }
        }
    }
}
