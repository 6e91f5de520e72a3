//! The append-only audit log: one JSON object per line, each carrying its sequence number and
//! the SHA-256 of the previous line's bytes (`prev`; the first line's is 64 zeros), so
//! editing, dropping or reordering any line breaks the chain at the next line.
//!
//! Invariant: a line is written with one `write` call on a file opened in append mode, and
//! flushed before the action it records is reported done.
//! Limit: the newest line has no successor to vouch for it; `verify` reports the head hash so
//! it can be recorded elsewhere and compared (`ppisd audit verify FILE --head HASH`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Lowercase hex SHA-256 of one line's bytes (without its newline).
pub fn line_hash(line: &str) -> String {
    Sha256::digest(line.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An open audit log, positioned after its last line.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
    prev: String,
}

/// What [`verify`] found wrong: the 1-based line and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: line {line}: {reason}", path.display())]
pub struct ChainError {
    pub path: PathBuf,
    pub line: u64,
    pub reason: String,
}

/// A log whose chain holds: how many lines, and the hash of the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    pub lines: u64,
    pub head: String,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the log at `path` and continues its
    /// chain. A log whose chain is broken is still appended to (an audit trail must not stop
    /// the daemon), but the break is returned so it can be logged and recorded.
    pub fn open(path: &Path) -> Result<(AuditLog, Option<ChainError>), String> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| format!("{}: {error}", parent.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let (next_seq, prev, broken) = match verify(path) {
            Ok(summary) => (summary.lines, summary.head, None),
            Err(error) => {
                // Continue after the last line as it stands, whatever came before it.
                let (lines, last) = last_line(path)?;
                (lines, last.as_deref().map_or_else(|| GENESIS.to_string(), line_hash), Some(error))
            }
        };
        Ok((AuditLog { path: path.to_path_buf(), file, next_seq, prev }, broken))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event: `seq`, `time` (Unix seconds), `prev`, `event` and `fields` (keys in
    /// sorted order; fields named like those four are ignored).
    pub fn append(&mut self, event: &str, fields: Value) -> Result<(), String> {
        let mut object = Map::new();
        object.insert("seq".into(), self.next_seq.into());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64 / 1000.0);
        object.insert("time".into(), now.into());
        object.insert("prev".into(), self.prev.clone().into());
        object.insert("event".into(), event.into());
        if let Value::Object(extra) = fields {
            for (key, value) in extra {
                object.entry(key).or_insert(value);
            }
        }
        let line = Value::Object(object).to_string();
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .map_err(|error| format!("{}: {error}", self.path.display()))?;
        self.prev = line_hash(&line);
        self.next_seq += 1;
        Ok(())
    }
}

/// How many lines the file has and its last line, read without trusting the chain.
fn last_line(path: &Path) -> Result<(u64, Option<String>), String> {
    let file = File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut count = 0;
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|error| format!("{}: {error}", path.display()))?;
        count += 1;
        last = Some(line);
    }
    Ok((count, last))
}

/// Checks the chain of the log at `path`: every line is a JSON object whose `seq` counts from
/// 0 and whose `prev` is the hash of the line before it.
pub fn verify(path: &Path) -> Result<ChainSummary, ChainError> {
    let fail = |line: u64, reason: String| ChainError { path: path.to_path_buf(), line, reason };
    let file = File::open(path).map_err(|error| fail(0, error.to_string()))?;
    let mut prev = GENESIS.to_string();
    let mut lines = 0u64;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index as u64 + 1;
        let line = line.map_err(|error| fail(number, error.to_string()))?;
        let value: Value = serde_json::from_str(&line).map_err(|error| fail(number, format!("not JSON: {error}")))?;
        let seq = value.get("seq").and_then(Value::as_u64);
        if seq != Some(index as u64) {
            return Err(fail(
                number,
                format!("sequence number {seq:?}, expected {index}: a line was dropped or moved"),
            ));
        }
        let claimed = value.get("prev").and_then(Value::as_str).unwrap_or("");
        if claimed != prev {
            return Err(fail(
                number,
                "the previous line's hash does not match: the line before was edited, dropped or reordered".to_string(),
            ));
        }
        prev = line_hash(&line);
        lines += 1;
    }
    Ok(ChainSummary { lines, head: prev })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_log(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ppisd-audit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("audit.log")
    }

    fn write_three(path: &Path) -> Vec<String> {
        let (mut log, broken) = AuditLog::open(path).unwrap();
        assert_eq!(broken, None);
        log.append("bundle_accepted", json!({"bundle": "a", "sha256": "00"})).unwrap();
        log.append("probe_attached", json!({"bundle": "a", "probe": "probe0"})).unwrap();
        log.append("bundle_refused", json!({"file": "b.ppb", "reason": "bad signature"})).unwrap();
        std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    #[test]
    fn an_intact_log_verifies_and_reopening_continues_the_chain() {
        let path = temp_log("intact");
        let lines = write_three(&path);
        let summary = verify(&path).unwrap();
        assert_eq!(summary, ChainSummary { lines: 3, head: line_hash(&lines[2]) });
        let (mut log, broken) = AuditLog::open(&path).unwrap();
        assert_eq!(broken, None);
        log.append("daemon_stopped", json!({})).unwrap();
        assert_eq!(verify(&path).unwrap().lines, 4);
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["prev"], GENESIS);
        assert_eq!(first["event"], "bundle_accepted");
    }

    #[test]
    fn an_edited_line_is_detected() {
        let path = temp_log("edited");
        let mut lines = write_three(&path);
        lines[0] = lines[0].replace("\"bundle\":\"a\"", "\"bundle\":\"evil\"");
        rewrite(&path, &lines);
        let error = verify(&path).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("previous line's hash does not match"), "{error}");
    }

    #[test]
    fn a_dropped_line_is_detected() {
        let path = temp_log("dropped");
        let mut lines = write_three(&path);
        lines.remove(1);
        rewrite(&path, &lines);
        let error = verify(&path).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("sequence number Some(2), expected 1"), "{error}");
    }

    #[test]
    fn reordered_lines_are_detected() {
        let path = temp_log("reordered");
        let mut lines = write_three(&path);
        lines.swap(1, 2);
        rewrite(&path, &lines);
        assert_eq!(verify(&path).unwrap_err().line, 2);
    }

    #[test]
    fn a_broken_log_is_reported_on_open_and_still_appended_to() {
        let path = temp_log("broken");
        let mut lines = write_three(&path);
        lines.remove(0);
        rewrite(&path, &lines);
        let (mut log, broken) = AuditLog::open(&path).unwrap();
        assert_eq!(broken.unwrap().line, 1);
        log.append("audit_chain_broken", json!({})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["prev"], line_hash(&lines[1]));
        assert_eq!(last["seq"], 2);
    }
}
