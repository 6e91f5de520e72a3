//! Entry names: relative slash-separated paths that are safe to extract anywhere.
//!
//! The same checks run in the writer and the reader, so a hand-made bundle with a path trick is
//! refused even when its signature is valid.

use std::collections::BTreeSet;

use crate::error::BundleError;
use crate::{MAX_ENTRY_NAME_BYTES, REQUIRED_ENTRIES};

/// Checks one entry name: non-empty, at most [`MAX_ENTRY_NAME_BYTES`], made of ASCII letters,
/// digits and `._-+/`, not absolute, no empty, `.` or `..` component.
pub fn validate_entry_name(name: &str) -> Result<(), BundleError> {
    let refuse = |reason| Err(BundleError::BadEntryName { name: name.to_string(), reason });
    if name.is_empty() {
        return refuse("empty name");
    }
    if name.len() > MAX_ENTRY_NAME_BYTES {
        return refuse("longer than 200 bytes");
    }
    // Specific reasons for the classic tricks first, then the allow-list catches the rest.
    if name.contains('\0') {
        return refuse("contains a NUL byte");
    }
    if name.contains('\\') {
        return refuse("contains a backslash");
    }
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-+/".contains(*c))) {
        return refuse(if bad.is_ascii_control() {
            "contains a control character"
        } else {
            "contains a character outside A-Z a-z 0-9 . _ - + /"
        });
    }
    for component in name.split('/') {
        match component {
            "" => return refuse("empty path component"),
            "." => return refuse("\".\" path component"),
            ".." => return refuse("\"..\" path component"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a whole list of entry names as it appears in a header: every name valid, strictly
/// ascending bytewise (canonical order, which also makes names unique), no name that is a
/// directory of another (`a` and `a/b` cannot both be extracted), the required entries present.
pub fn validate_entry_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), BundleError> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut previous: Option<&str> = None;
    for name in names {
        validate_entry_name(name)?;
        if let Some(previous) = previous {
            if name == previous {
                return Err(BundleError::BadEntryName { name: name.to_string(), reason: "duplicate entry" });
            }
            if name < previous {
                return Err(BundleError::BadHeader(format!(
                    "entries are not in canonical (sorted) order: {name:?} after {previous:?}"
                )));
            }
        }
        previous = Some(name);
        seen.insert(name);
    }
    for name in &seen {
        let mut directory_end = 0;
        while let Some(slash) = name[directory_end..].find('/') {
            directory_end += slash;
            if seen.contains(&name[..directory_end]) {
                return Err(BundleError::BadEntryName {
                    name: name.to_string(),
                    reason: "lies under another entry that is a file",
                });
            }
            directory_end += 1;
        }
    }
    for required in REQUIRED_ENTRIES {
        if !seen.contains(required) {
            return Err(BundleError::MissingEntry(required));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tricks_are_refused_with_a_reason() {
        for (name, reason) in [
            ("", "empty name"),
            ("../x", "\"..\" path component"),
            ("a/../../b", "\"..\" path component"),
            ("/etc/passwd", "absolute path"),
            ("a\\b", "contains a backslash"),
            ("a\0b", "contains a NUL byte"),
            ("a//b", "empty path component"),
            ("./a", "\".\" path component"),
            ("a/", "empty path component"),
            ("C:x", "contains a character outside A-Z a-z 0-9 . _ - + /"),
            ("a\nb", "contains a control character"),
        ] {
            assert_eq!(
                validate_entry_name(name),
                Err(BundleError::BadEntryName { name: name.into(), reason }),
                "{name:?}"
            );
        }
        let long = "a".repeat(MAX_ENTRY_NAME_BYTES + 1);
        assert!(validate_entry_name(&long).is_err());
        assert!(validate_entry_name(&long[1..]).is_ok());
        assert!(validate_entry_name("proofs/probe0.v").is_ok());
        assert!(validate_entry_name("..a/b..").is_ok());
    }

    #[test]
    fn lists_must_be_sorted_unique_and_not_nest_files() {
        let base = ["certificate.json", "manifest.json", "object.o"];
        assert!(validate_entry_list(base).is_ok());
        assert!(matches!(
            validate_entry_list(["certificate.json", "manifest.json", "manifest.json", "object.o"]),
            Err(BundleError::BadEntryName { reason: "duplicate entry", .. })
        ));
        assert!(matches!(
            validate_entry_list(["manifest.json", "certificate.json", "object.o"]),
            Err(BundleError::BadHeader(_))
        ));
        assert!(matches!(
            validate_entry_list(["certificate.json", "manifest.json", "object.o", "object.o/x"]),
            Err(BundleError::BadEntryName { reason: "lies under another entry that is a file", .. })
        ));
        assert_eq!(
            validate_entry_list(["certificate.json", "object.o"]),
            Err(BundleError::MissingEntry("manifest.json"))
        );
    }
}
