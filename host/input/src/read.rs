//! Reading a file the user named: never more than its cap, never a stream
//! or a device that could block or never end, and every failure classified.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

use crate::error::{InputError, Problem};

/// The whole file, refused when it is over `cap` bytes. At most `cap + 1`
/// bytes are ever read, whatever the file system claims its size is.
pub fn read_bytes(path: &Path, what: &'static str, cap: u64) -> Result<Vec<u8>, InputError> {
    let fail = |problem| InputError::new(path, what, problem);
    // Checked before opening: opening a FIFO blocks until someone writes to it.
    let meta = std::fs::metadata(path).map_err(|e| fail(classify(path, e)))?;
    refuse_non_file(&meta).map_err(fail)?;
    if meta.len() > cap {
        return Err(fail(Problem::TooLarge {
            cap,
            size: Some(meta.len()),
        }));
    }
    let file = File::open(path).map_err(|e| fail(classify(path, e)))?;
    // The path may have been replaced between the two looks.
    let meta = file.metadata().map_err(|e| fail(Problem::Io(e)))?;
    refuse_non_file(&meta).map_err(fail)?;
    // Files in /proc and the like report size 0: the limit still holds.
    let mut bytes = Vec::with_capacity(meta.len().min(cap) as usize + 1);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| fail(classify(path, e)))?;
    if bytes.len() as u64 > cap {
        return Err(fail(Problem::TooLarge { cap, size: None }));
    }
    Ok(bytes)
}

/// The file as UTF-8 text, read as by [`read_bytes`]. Binary data (a NUL
/// byte, or bytes that are not UTF-8) and a file holding only white space
/// are refused.
pub fn read_text(path: &Path, what: &'static str, cap: u64) -> Result<String, InputError> {
    let bytes = read_bytes(path, what, cap)?;
    let fail = |problem| InputError::new(path, what, problem);
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(fail(Problem::NotText { offset, nul: true }));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(Problem::NotText {
            offset: e.utf8_error().valid_up_to(),
            nul: false,
        })
    })?;
    if text.trim().is_empty() {
        return Err(fail(Problem::Empty));
    }
    Ok(text)
}

/// Like [`read_bytes`], with `None` when nothing is at `path` (a dangling
/// link is an error, not an absence: someone meant a file to be there).
pub fn read_optional(
    path: &Path,
    what: &'static str,
    cap: u64,
) -> Result<Option<Vec<u8>>, InputError> {
    match read_bytes(path, what, cap) {
        Err(InputError {
            problem: Problem::NotFound,
            ..
        }) => Ok(None),
        other => other.map(Some),
    }
}

/// Checks that `path` is a directory that can be listed.
pub fn check_dir(path: &Path, what: &'static str) -> Result<(), InputError> {
    let fail = |problem| InputError::new(path, what, problem);
    let meta = std::fs::metadata(path).map_err(|e| fail(classify(path, e)))?;
    if !meta.is_dir() {
        return Err(fail(Problem::NotADirectory));
    }
    std::fs::read_dir(path).map_err(|e| fail(classify(path, e)))?;
    Ok(())
}

fn refuse_non_file(meta: &Metadata) -> Result<(), Problem> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    if t.is_dir() {
        return Err(Problem::IsDirectory);
    }
    Err(Problem::NotAFile {
        kind: special_kind(&t),
    })
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "special file"
}

/// `errno` for "too many levels of symbolic links" (not yet a stable
/// `io::ErrorKind`).
#[cfg(target_os = "linux")]
const ELOOP: i32 = 40;
#[cfg(not(target_os = "linux"))]
const ELOOP: i32 = 62;

/// The cause of an I/O error on `path`, told apart as far as the error and
/// a second look at the path allow.
fn classify(path: &Path, e: io::Error) -> Problem {
    if e.raw_os_error() == Some(ELOOP) {
        return Problem::SymlinkLoop;
    }
    match e.kind() {
        io::ErrorKind::NotFound => match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Problem::DanglingSymlink {
                target: std::fs::read_link(path).unwrap_or_default(),
            },
            _ => Problem::NotFound,
        },
        io::ErrorKind::PermissionDenied => Problem::PermissionDenied,
        io::ErrorKind::IsADirectory => Problem::IsDirectory,
        // A path through a file (`policy.wasm/x`): nothing can be there.
        io::ErrorKind::NotADirectory => Problem::NotFound,
        _ => Problem::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn problem(r: Result<impl std::fmt::Debug, InputError>) -> (Problem, String) {
        let e = r.unwrap_err();
        let shown = e.to_string();
        (e.problem, shown)
    }

    #[test]
    fn reads_a_file_up_to_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, "seed: 1\n").unwrap();
        assert_eq!(read_bytes(&p, "scenario", 8).unwrap(), b"seed: 1\n");
        assert_eq!(read_text(&p, "scenario", 8).unwrap(), "seed: 1\n");
        let (why, shown) = problem(read_bytes(&p, "scenario", 7));
        assert!(
            matches!(
                why,
                Problem::TooLarge {
                    cap: 7,
                    size: Some(8)
                }
            ),
            "{why:?}"
        );
        assert!(
            shown.contains("is 8 bytes, over the 7 bytes limit"),
            "{shown}"
        );
    }

    #[test]
    fn a_file_that_hides_its_size_is_still_capped() {
        // /proc files report size 0.
        let (why, shown) = problem(read_bytes(Path::new("/proc/self/status"), "config", 16));
        assert!(
            matches!(
                why,
                Problem::TooLarge {
                    cap: 16,
                    size: None
                }
            ),
            "{why:?}"
        );
        assert!(
            shown.starts_with("config /proc/self/status: is over the 16 bytes limit"),
            "{shown}"
        );
    }

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let (why, shown) = problem(read_bytes(Path::new("/dev/zero"), "policy", 1 << 20));
        assert!(
            matches!(
                why,
                Problem::NotAFile {
                    kind: "character device"
                }
            ),
            "{why:?}"
        );
        assert!(
            shown.contains(
                "policy /dev/zero: is a character device, not a file; fix: give a regular file"
            ),
            "{shown}"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (GNU coreutils) must be installed to run this test");
        assert!(made.success());
        // Opening a FIFO would block until a writer came: this must return.
        let (why, shown) = problem(read_text(&fifo, "scenario", 1 << 20));
        assert!(
            matches!(
                why,
                Problem::NotAFile {
                    kind: "FIFO (named pipe)"
                }
            ),
            "{why:?}"
        );
        assert!(
            shown.contains("is a FIFO (named pipe), not a file"),
            "{shown}"
        );
    }

    #[test]
    fn each_path_problem_has_its_own_cause_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let target = d.join("gone.wasm");
        symlink(&target, d.join("dangling")).unwrap();
        symlink(d.join("loop-b"), d.join("loop-a")).unwrap();
        symlink(d.join("loop-a"), d.join("loop-b")).unwrap();
        let cases = [
            (d.join("missing"), "does not exist", "check the path"),
            (
                d.to_path_buf(),
                "is a directory, not a file",
                "not the directory holding it",
            ),
            (
                d.join("loop-a"),
                "is a symbolic link loop",
                "lead back to themselves",
            ),
            (
                d.join("dangling"),
                &*format!(
                    "is a dangling symbolic link: its target {} does not exist",
                    target.display()
                ),
                "restore it",
            ),
        ];
        let mut fixes = std::collections::HashSet::new();
        for (path, cause, fix) in cases {
            let e = read_bytes(&path, "policy", 1 << 20).unwrap_err();
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("policy {}: {cause}; fix: ", path.display())),
                "{shown}"
            );
            assert!(e.fix().contains(fix), "{shown}");
            assert!(fixes.insert(e.fix()), "fix repeated: {shown}");
        }
    }

    #[test]
    fn binary_and_empty_text_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"seed: 1\n\0\x01").unwrap();
        let (why, shown) = problem(read_text(&p, "scenario", 1 << 20));
        assert!(
            matches!(
                why,
                Problem::NotText {
                    offset: 8,
                    nul: true
                }
            ),
            "{why:?}"
        );
        assert!(
            shown.contains("is not a text file (a NUL byte at byte 8)"),
            "{shown}"
        );
        std::fs::write(&p, b"seed: \xff\xfe").unwrap();
        let (why, _) = problem(read_text(&p, "scenario", 1 << 20));
        assert!(
            matches!(
                why,
                Problem::NotText {
                    offset: 6,
                    nul: false
                }
            ),
            "{why:?}"
        );
        std::fs::write(&p, " \n\t\n").unwrap();
        let (why, shown) = problem(read_text(&p, "config", 1 << 20));
        assert!(matches!(why, Problem::Empty), "{why:?}");
        assert!(
            shown.contains("config ")
                && shown.contains(": is empty; fix: write the config into the file"),
            "{shown}"
        );
        // Binary readers take what is there.
        assert_eq!(read_bytes(&p, "policy", 16).unwrap(), b" \n\t\n");
    }

    #[test]
    fn optional_reads_tell_absence_from_breakage() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(
            read_optional(&d.join("none"), "policy", 16)
                .unwrap()
                .is_none()
        );
        symlink(d.join("gone"), d.join("dangling")).unwrap();
        let (why, _) = problem(read_optional(&d.join("dangling"), "policy", 16));
        assert!(matches!(why, Problem::DanglingSymlink { .. }), "{why:?}");
    }

    #[test]
    fn directories_are_checked_as_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        check_dir(d, "policy directory").unwrap();
        let (why, shown) = problem(check_dir(&d.join("missing"), "policy directory"));
        assert!(matches!(why, Problem::NotFound), "{why:?}");
        assert!(
            shown.contains("policy directory ")
                && shown.contains(": does not exist; fix: check the path"),
            "{shown}"
        );
        let f = d.join("file");
        std::fs::write(&f, "x").unwrap();
        let (why, _) = problem(check_dir(&f, "policy directory"));
        assert!(matches!(why, Problem::NotADirectory), "{why:?}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        use crate::show_size;
        assert_eq!(show_size(32 << 20), "32 MiB");
        assert_eq!(show_size(3 << 19), "1.5 MiB");
        assert_eq!(show_size(1 << 30), "1 GiB");
        assert_eq!(show_size(800), "800 bytes");
    }
}
