//! Panics the gateway catches itself. Where a dependency panics on hostile input, the gateway wraps
//! the call in `catch_unwind` and reports an error; libFuzzer's panic hook, though, aborts on every
//! panic, caught or not. [`let_unwind_from`] installs a hook that lets panics raised in the named
//! dependencies' source unwind (to the gateway's `catch_unwind`) while the harness is inside
//! [`gateway_catches`]; any other panic still goes to libFuzzer and is a crash, as is one that
//! nobody catches.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    /// Set while the harness is in a gateway call that catches dependency panics.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook (once per process). `sources` are fragments of the panicking file's path,
/// e.g. `"/rsasl-"` for any rsasl version in the cargo registry.
pub fn let_unwind_from(sources: &'static [&'static str]) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dependency = info
                .location()
                .is_some_and(|l| sources.iter().any(|s| l.file().contains(s)));
            if !(in_dependency && CATCHING.with(Cell::get)) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, a gateway call that catches the dependencies' panics itself.
pub fn gateway_catches<T>(f: impl FnOnce() -> T) -> T {
    CATCHING.with(|c| c.set(true));
    let out = f();
    CATCHING.with(|c| c.set(false));
    out
}
