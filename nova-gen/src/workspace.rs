//! Where a generated crate lives: inside a nova checkout, inside another Cargo workspace, or on
//! its own; and joining the nova workspace by adding the crate to `members`.
//!
//! A directory is inside a nova checkout when the nearest `Cargo.toml` above it with a
//! `[workspace]` table (the one Cargo itself would pick) belongs to a workspace that has a
//! `nova-core/Cargo.toml` and names `nova-core` as a member or workspace dependency.
//!
//! Joining edits the manifest's text rather than re-serializing it, so comments, order and
//! formatting stay as they were: the new entry goes at the end of the `members` array, in the
//! array's own layout (one entry per line, or all on one line). The result is parsed again and
//! checked before it is written.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::GenError;

/// A Cargo workspace found above a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundWorkspace {
    /// The directory holding the workspace's `Cargo.toml`.
    pub(crate) root: PathBuf,
    /// Whether it is a nova checkout.
    pub(crate) is_nova: bool,
}

/// The workspace Cargo would use for a package in `dir` (which need not exist yet).
pub(crate) fn find_workspace(dir: &Path) -> Option<FoundWorkspace> {
    dir.ancestors().find_map(|candidate| {
        let text = fs::read_to_string(candidate.join("Cargo.toml")).ok()?;
        let manifest: toml::Table = toml::from_str(&text).ok()?;
        let workspace = manifest.get("workspace")?.as_table()?;
        Some(FoundWorkspace {
            root: candidate.to_path_buf(),
            is_nova: is_nova(candidate, workspace),
        })
    })
}

fn is_nova(root: &Path, workspace: &toml::Table) -> bool {
    let in_members = members(workspace).iter().any(|m| m == "nova-core");
    let in_deps = workspace
        .get("dependencies")
        .and_then(|d| d.get("nova-core"))
        .is_some();
    (in_members || in_deps) && root.join("nova-core/Cargo.toml").is_file()
}

fn members(workspace: &toml::Table) -> Vec<String> {
    let list = workspace.get("members").and_then(toml::Value::as_array);
    list.map(|l| {
        l.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
    .unwrap_or_default()
}

/// Whether `pattern` (a `members` entry, possibly ending in `/*`) covers `member`.
fn covers(pattern: &str, member: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    match pattern.strip_suffix("/*") {
        Some(parent) => member.rsplit_once('/').is_some_and(|(p, _)| p == parent),
        None => pattern == member,
    }
}

/// Adds `member` to the `members` of the workspace whose root is `root`. Returns `false` when
/// it was a member already (or covered by a glob).
pub(crate) fn add_member(root: &Path, member: &str) -> Result<bool, GenError> {
    let manifest = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).map_err(GenError::io(&manifest))?;
    let fail = |reason: &str| GenError::Workspace {
        manifest: manifest.clone(),
        member: member.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed: toml::Table =
        toml::from_str(&text).map_err(|e| fail(&format!("not valid TOML: {e}")))?;
    let workspace = parsed
        .get("workspace")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| fail("no [workspace] table"))?;
    if members(workspace).iter().any(|m| covers(m, member)) {
        return Ok(false);
    }
    let edited = insert_member(&text, member).ok_or_else(|| {
        fail("the `members` array is not in a form this tool can edit; add the entry by hand")
    })?;
    let check: toml::Table = toml::from_str(&edited)
        .map_err(|e| fail(&format!("the edit would break the file: {e}")))?;
    let listed = check
        .get("workspace")
        .and_then(toml::Value::as_table)
        .map(members)
        .unwrap_or_default();
    if !listed.iter().any(|m| m == member) {
        return Err(fail("the edit did not produce the entry; add it by hand"));
    }
    fs::write(&manifest, edited).map_err(GenError::io(&manifest))?;
    Ok(true)
}

/// The manifest text with `member` appended to `[workspace] members` (created if missing).
fn insert_member(text: &str, member: &str) -> Option<String> {
    let entry = format!("\"{}\"", member.replace('\\', "\\\\").replace('"', "\\\""));
    let header = find_line(text, 0, |l| l.trim() == "[workspace]")?;
    let section_end = find_line(text, header, |l| {
        l.trim_start().starts_with('[') && l.trim() != "[workspace]"
    })
    .unwrap_or(text.len());
    let Some(key) = find_line(&text[..section_end], header, |l| {
        l.trim_start()
            .strip_prefix("members")
            .is_some_and(|r| r.trim_start().starts_with('='))
    }) else {
        let after_header = text[header..]
            .find('\n')
            .map_or(text.len(), |i| header + i + 1);
        return Some(format!(
            "{}members = [{entry}]\n{}",
            &text[..after_header],
            &text[after_header..]
        ));
    };
    let open = key + text[key..].find('[')?;
    let close = matching_bracket(text, open)?;
    let inside = &text[open + 1..close];
    // Where the last entry ends (skipping whitespace and comments), and whether it has a comma.
    let last = last_value_end(inside);
    let needs_comma = last.is_some_and(|end| !inside[end..].trim_start().starts_with(','));
    let mut out = text.to_owned();
    if inside.contains('\n') {
        // One entry per line: indent like the last entry.
        let indent = inside
            .lines()
            .rev()
            .map(|l| &l[..l.len() - l.trim_start().len()])
            .find(|i| !i.is_empty())
            .unwrap_or("    ");
        let line_start = text[..close].rfind('\n').map_or(close, |i| i + 1);
        if text[line_start..close].trim().is_empty() {
            // `]` alone on its line: our line goes right above it.
            out.insert_str(line_start, &format!("{indent}{entry},\n"));
            if let (Some(end), true) = (last, needs_comma) {
                out.insert(open + 1 + end, ',');
            }
        } else {
            // `]` closes the last entry's line: ours goes on a new line before it.
            let comma = if needs_comma { "," } else { "" };
            out.insert_str(close, &format!("{comma}\n{indent}{entry},\n"));
        }
    } else {
        let body = inside.trim_end();
        let insert = if body.trim().is_empty() {
            out.replace_range(open + 1..close, "");
            entry
        } else {
            out.replace_range(open + 1 + body.len()..close, "");
            format!("{}{entry}", if body.ends_with(',') { " " } else { ", " })
        };
        out.insert_str(open + 1 + body.len(), &insert);
    }
    Some(out)
}

/// The byte offset of the first line at or after `from` that satisfies `pred`.
fn find_line(text: &str, from: usize, pred: impl Fn(&str) -> bool) -> Option<usize> {
    let mut offset = from;
    // Start at the beginning of the line after `from` unless `from` is a line start.
    if from > 0 && !text[..from].ends_with('\n') {
        offset = from + text[from..].find('\n')? + 1;
    }
    for line in text[offset..].split_inclusive('\n') {
        if pred(line.trim_end_matches(['\n', '\r'])) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The offset of the `]` closing the array opened at `open`, skipping strings and comments.
fn matching_bracket(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut chars = text[open..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            '"' | '\'' => {
                let mut escaped = false;
                for (_, d) in chars.by_ref() {
                    if c == '"' && d == '\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    if d == c && !escaped {
                        break;
                    }
                    escaped = false;
                }
            }
            '#' => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The end offset of the last value in an array's inside (strings and commas count; comments
/// and whitespace do not), or `None` for an empty array.
fn last_value_end(inside: &str) -> Option<usize> {
    let mut end = None;
    let mut chars = inside.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let mut escaped = false;
                for (j, d) in chars.by_ref() {
                    if c == '"' && d == '\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    if d == c && !escaped {
                        end = Some(j + 1);
                        break;
                    }
                    escaped = false;
                }
            }
            c if c.is_whitespace() || c == ',' => {}
            _ => end = Some(i + c.len_utf8()),
        }
    }
    end
}

/// `path` made absolute against `base` and cleaned of `.` and `..`, without touching the file
/// system (the path may not exist yet).
pub(crate) fn absolute(base: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `to` relative to the directory `from` (both absolute and clean), with `/` separators.
pub(crate) fn relative(from: &Path, to_path: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to_path.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    // Sharing only the root (or a drive): an absolute path says more than `../../..`.
    if common <= 1 {
        return to_path.to_string_lossy().replace('\\', "/");
    }
    let ups = std::iter::repeat_n("..".to_owned(), from.len() - common);
    let downs = to[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let parts: Vec<String> = ups.chain(downs).collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn members_are_appended_in_the_arrays_own_layout() {
        let multi = "[workspace]\nresolver = \"3\"\nmembers = [\n    \"nova\",\n    \"nova-core\", # the core\n]\n\n[workspace.package]\nversion = \"0.1.0\"\n";
        assert_eq!(
            insert_member(multi, "platforms/nova-x").unwrap(),
            "[workspace]\nresolver = \"3\"\nmembers = [\n    \"nova\",\n    \"nova-core\", # the core\n    \"platforms/nova-x\",\n]\n\n[workspace.package]\nversion = \"0.1.0\"\n"
        );
        let no_trailing_comma = "[workspace]\nmembers = [\n  \"a\",\n  \"b\"\n]\n";
        assert_eq!(
            insert_member(no_trailing_comma, "c").unwrap(),
            "[workspace]\nmembers = [\n  \"a\",\n  \"b\",\n  \"c\",\n]\n"
        );
        let one_line = "[workspace]\nmembers = [\"a\", \"b\"]\n";
        assert_eq!(
            insert_member(one_line, "c").unwrap(),
            "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\n"
        );
        let empty = "[workspace]\nmembers = []\n";
        assert_eq!(
            insert_member(empty, "c").unwrap(),
            "[workspace]\nmembers = [\"c\"]\n"
        );
        let missing = "[package]\nname = \"x\"\n\n[workspace]\nresolver = \"3\"\n";
        assert_eq!(
            insert_member(missing, "c").unwrap(),
            "[package]\nname = \"x\"\n\n[workspace]\nmembers = [\"c\"]\nresolver = \"3\"\n"
        );
        let bracket_on_last_line = "[workspace]\nmembers = [\n    \"a\",\n    \"b\"]\n";
        let edited = insert_member(bracket_on_last_line, "c").unwrap();
        let parsed: toml::Table = toml::from_str(&edited).unwrap();
        assert_eq!(
            members(parsed["workspace"].as_table().unwrap()),
            ["a", "b", "c"]
        );
        let tricky = "[workspace]\nmembers = [\"a]\", 'b#'] # ]\n";
        assert_eq!(
            insert_member(tricky, "c").unwrap(),
            "[workspace]\nmembers = [\"a]\", 'b#', \"c\"] # ]\n"
        );
    }

    #[test]
    fn globs_cover_members() {
        assert!(covers("platforms/*", "platforms/nova-x"));
        assert!(!covers("platforms/*", "other/nova-x"));
        assert!(covers("platforms/nova-x/", "platforms/nova-x"));
    }

    #[test]
    fn paths() {
        let base = Path::new("/w/main");
        assert_eq!(
            absolute(base, Path::new("../x/./y")),
            PathBuf::from("/w/x/y")
        );
        assert_eq!(
            relative(Path::new("/w/main"), Path::new("/w/main/platforms/nova-x")),
            "platforms/nova-x"
        );
        assert_eq!(
            relative(Path::new("/w/out/nova-x"), Path::new("/w/main")),
            "../../main"
        );
        assert_eq!(
            relative(Path::new("/tmp/out/nova-x"), Path::new("/w/main")),
            "/w/main"
        );
        assert_eq!(relative(Path::new("/w"), Path::new("/w")), ".");
    }
}
