//! Whether a built component is older than its sources: the Python and JavaScript builds run
//! only when something they read changed, since CI builds everything once per run.

use std::path::Path;
use std::time::SystemTime;

/// An adapter built from sources by a language's own tool (componentize-py, componentize-js):
/// its folder, the contract version it is built against (a folder of `wit/`), the component.
pub struct SourceAdapter {
    pub dir: &'static str,
    pub wit: &'static str,
    pub component: &'static str,
}

/// Folders a toolchain writes beside the sources (its caches, its installed packages): not
/// sources.
const NOT_SOURCES: [&str; 2] = ["__pycache__", "node_modules"];

/// When anything under `path` last changed (the file itself for a file).
pub(crate) fn newest(path: &Path) -> anyhow::Result<SystemTime> {
    let mut latest = modified(path);
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if NOT_SOURCES.iter().any(|n| entry.file_name() == *n) {
                continue;
            }
            latest = latest.max(newest(&entry.path())?);
        }
    }
    Ok(latest)
}

/// When `path` was last written; long ago when it does not exist.
pub(crate) fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
