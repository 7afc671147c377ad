//! Locating the shared real-world fixtures (`../shared/fixtures` beside the
//! project root). Tests call [`fixtures_dir`]; when the folder is missing they
//! skip with a message, except under `CI=true`, where that is a failure.

use std::path::PathBuf;

/// The fixtures folder, or `None` (after printing why) when it is absent and
/// the run is not CI. Panics under `CI=true` when absent: a missing fixture
/// must fail CI rather than pass silently.
pub fn fixtures_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // crates/therapy -> project root -> ../shared/fixtures
    let candidates =
        [root.join("../../../shared/fixtures"), root.join("../../shared/fixtures"), root.join("../shared/fixtures")];
    if let Ok(dir) = std::env::var("DIABASE_FIXTURES") {
        let p = PathBuf::from(dir);
        if p.is_dir() {
            return Some(p);
        }
    }
    for c in candidates {
        if c.join("README.md").is_file() {
            return Some(c);
        }
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("../shared/fixtures is missing: under CI=true a missing fixture is a failure");
    }
    eprintln!("SKIP: ../shared/fixtures not found beside the project root; fixture tests skipped");
    None
}
