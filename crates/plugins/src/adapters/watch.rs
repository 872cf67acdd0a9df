//! The folder operators drop component files into, for those who deploy by file.
//!
//! Polled on each sync rather than watched through inotify: it works the same on every
//! filesystem (network mounts included), and a file counts only once its size and mtime held
//! still across two scans, so a copy in progress is never read half-written. Copying to a
//! temporary name and renaming into place is still the safest way to drop a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What the folder held at the last scan.
pub struct Watcher {
    dir: PathBuf,
    /// Per file: size and mtime last seen, and whether it was handed out.
    seen: HashMap<PathBuf, (u64, SystemTime, bool)>,
}

impl Watcher {
    /// Watch `dir` (created if missing).
    pub fn new(dir: PathBuf) -> std::io::Result<Watcher> {
        std::fs::create_dir_all(&dir)?;
        Ok(Watcher {
            dir,
            seen: HashMap::new(),
        })
    }

    /// The `.wasm` files that are new or changed and have held still since the last scan.
    pub fn scan(&mut self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ready = Vec::new();
        let mut present = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let now = (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            );
            present.push(path.clone());
            match self.seen.get_mut(&path) {
                Some((len, mtime, handed)) if (*len, *mtime) == now => {
                    if !*handed {
                        *handed = true;
                        ready.push(path);
                    }
                }
                _ => {
                    self.seen.insert(path, (now.0, now.1, false));
                }
            }
        }
        self.seen.retain(|p, _| present.contains(p));
        ready.sort();
        ready
    }
}

/// Leave the reason a dropped file was refused beside it, as `<file>.refused`.
pub fn mark_refused(file: &Path, reason: &str) {
    let mut name = file.as_os_str().to_owned();
    name.push(".refused");
    if let Err(e) = std::fs::write(PathBuf::from(name), format!("{reason}\n")) {
        tracing::warn!(file = %file.display(), error = %e, "cannot write the refusal note");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_handed_out_once_after_it_held_still() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("drop");
        let mut watcher = Watcher::new(dir.clone()).unwrap();
        std::fs::write(dir.join("a.wasm"), b"one").unwrap();
        std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        assert!(
            watcher.scan().is_empty(),
            "first sight: maybe still being written"
        );
        assert_eq!(watcher.scan(), vec![dir.join("a.wasm")]);
        assert!(watcher.scan().is_empty(), "handed out once");
        std::fs::write(dir.join("a.wasm"), b"changed!").unwrap();
        assert!(watcher.scan().is_empty());
        assert_eq!(watcher.scan(), vec![dir.join("a.wasm")]);
    }
}
