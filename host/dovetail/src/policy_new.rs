//! `dovetail policy new NAME --decision D [--lang L] [--dir PATH]`: writes a
//! ready policy project from the templates embedded in this binary.
//!
//! A language is a directory `policies/templates/<lang>/`; every file in it
//! is rendered with minijinja (variables `name`, `ident`, `selection`,
//! `scoring`, `world`, `sdk`) and written at the same relative path. A file
//! that renders to nothing but whitespace is left out, so a template can
//! hold files for one decision only; a file that starts with `#!` is made
//! executable. Projects in other languages than Rust also get the WIT
//! contract as `wit/`, and C projects the C SDK as `sdk/`.
//!
//! The project is written into a directory beside its destination and
//! renamed into place when complete, so a failure leaves no half project.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use include_dir::{Dir, include_dir};

use crate::output::{self, outln};

/// Templates, WIT and C SDK, gathered by build.rs.
static EMBEDDED: Dir<'static> = include_dir!("$OUT_DIR/policy-new");

/// The SDK version a project outside this repository depends on: the one
/// this binary belongs to (major.minor, so patch releases are picked up).
const SDK_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION_MAJOR"),
    ".",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// Longest accepted NAME: a Kubernetes label value, where the name ends up.
const NAME_MAX: usize = 63;

#[derive(Args)]
pub struct NewArgs {
    /// The policy's name, in kebab-case (lowercase letters, digits and single
    /// hyphens, starting with a letter), e.g. `spot-first`.
    #[arg(value_parser = parse_name)]
    name: String,
    /// Which decisions the policy makes.
    #[arg(long, value_enum)]
    decision: NewDecision,
    /// The project's language: rust, or another language whose template
    /// this build embeds (c, js).
    #[arg(long, default_value = "rust", value_parser = parse_lang)]
    lang: String,
    /// Directory to create (default `./NAME`); it must not exist, or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NewDecision {
    InstanceSelection,
    ConsolidationScoring,
    Both,
}

impl NewDecision {
    fn selection(self) -> bool {
        self != Self::ConsolidationScoring
    }

    fn scoring(self) -> bool {
        self != Self::InstanceSelection
    }

    /// The world of `wit/policy.wit` a component making these decisions
    /// targets.
    fn world(self) -> &'static str {
        match self {
            Self::InstanceSelection => "instance-selector",
            Self::ConsolidationScoring => "consolidation-scorer",
            Self::Both => "policy",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::InstanceSelection => "instance-selection",
            Self::ConsolidationScoring => "consolidation-scoring",
            Self::Both => "instance-selection and consolidation-scoring",
        }
    }
}

/// Why a NAME is refused, or `None` when it is a good one.
fn name_problem(name: &str) -> Option<String> {
    const RESERVED: [&str; 7] = [
        "core",
        "std",
        "alloc",
        "test",
        "proc-macro",
        "dovetail-policy-sdk",
        "wit-bindgen",
    ];
    let first = name.chars().next()?;
    if name.len() > NAME_MAX {
        return Some(format!("is {} characters, over {NAME_MAX}", name.len()));
    }
    if !first.is_ascii_lowercase() {
        return Some("must start with a lowercase letter".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "holds {c:?}; only lowercase letters, digits and '-' are allowed"
        ));
    }
    if name.ends_with('-') || name.contains("--") {
        return Some("has a hyphen at the end or two in a row".into());
    }
    if RESERVED.contains(&name) || is_rust_keyword(name) {
        return Some("is reserved (a Rust keyword or a crate every policy uses)".into());
    }
    None
}

fn is_rust_keyword(name: &str) -> bool {
    const KEYWORDS: [&str; 51] = [
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
        "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final",
        "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    KEYWORDS.contains(&name)
}

fn parse_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the name is empty; fix: give a kebab-case name such as spot-first".into());
    }
    match name_problem(name) {
        None => Ok(name.to_string()),
        Some(why) => Err(format!(
            "policy name {name:?} {why}; fix: use kebab-case, e.g. {:?}",
            suggest_name(name)
        )),
    }
}

/// A kebab-case spelling of `name`, for the fix in an error.
fn suggest_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out
        .trim_matches('-')
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    let out = if out.is_empty() { "my-policy" } else { out };
    if name_problem(out).is_none() {
        out.chars().take(NAME_MAX).collect()
    } else {
        format!("my-{}", &out[..out.len().min(NAME_MAX - 3)])
            .trim_end_matches('-')
            .to_string()
    }
}

/// Languages with a template in this build.
fn languages() -> Vec<&'static str> {
    EMBEDDED
        .get_dir("templates")
        .map(|t| {
            t.dirs()
                .filter(|d| d.entries().iter().any(has_file))
                .filter_map(|d| d.path().file_name()?.to_str())
                .collect()
        })
        .unwrap_or_default()
}

fn has_file(entry: &include_dir::DirEntry<'_>) -> bool {
    match entry {
        include_dir::DirEntry::File(_) => true,
        include_dir::DirEntry::Dir(d) => d.entries().iter().any(has_file),
    }
}

fn parse_lang(lang: &str) -> Result<String, String> {
    let known = languages();
    if known.contains(&lang) {
        Ok(lang.to_string())
    } else {
        Err(format!(
            "no template for language {lang:?} in this build of dovetail; fix: use --lang {}",
            known.join(" or --lang ")
        ))
    }
}

/// Files beside the template that a language needs, by where they go in
/// the project: the WIT for every language but Rust (whose SDK carries
/// it), and the C SDK for C.
fn extras(lang: &str) -> Result<Vec<(&'static str, &'static Dir<'static>)>> {
    let mut extras = Vec::new();
    if lang != "rust" {
        extras.push(("wit", embedded_dir("wit", "the WIT contract (wit/)")?));
    }
    if lang == "c" {
        extras.push(("sdk", embedded_dir("c-sdk", "the C SDK (policies/c/sdk/)")?));
    }
    Ok(extras)
}

fn embedded_dir(key: &str, what: &str) -> Result<&'static Dir<'static>> {
    match EMBEDDED.get_dir(key) {
        Some(d) if d.entries().iter().any(has_file) => Ok(d),
        _ => bail!(
            "this build of dovetail does not embed {what}, which the project needs; \
             fix: build dovetail from a checkout that has it"
        ),
    }
}

pub fn run(args: &NewArgs) -> Result<()> {
    let out = output::stdout("the new project's summary");
    let extras = extras(&args.lang)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_destination(&dir)?;
    let absolute =
        std::path::absolute(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let sdk = if args.lang == "rust" {
        sdk_dependency(&absolute)
    } else {
        String::new()
    };
    let files = render(&args.lang, &args.name, args.decision, &sdk, &extras)?;
    write_project(&absolute, &files)?;

    outln!(
        out,
        "created {} ({}, {}) in {}",
        args.name,
        args.lang,
        args.decision.label(),
        dir.display()
    )?;
    if !sdk.is_empty() {
        outln!(out, "  dovetail-policy-sdk = {sdk}")?;
    }
    for path in files.keys() {
        outln!(out, "  {}", path.display())?;
    }
    outln!(
        out,
        "next: build, test and check it as {} says",
        dir.join("README.md").display()
    )?;
    Ok(())
}

/// The end of every refusal of a destination that cannot be made.
const UNWRITABLE: &str =
    "nothing was written; fix: give NAME or --dir a path inside a directory you can write";

/// Refuses a destination that exists and is not an empty directory.
fn check_destination(dir: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!(
            "cannot use {} for the project: {e}; {UNWRITABLE}",
            dir.display()
        ),
    };
    if !meta.is_dir() {
        bail!(
            "{} already exists and is not a directory; fix: choose another NAME or --dir",
            dir.display()
        );
    }
    let mut entries =
        fs::read_dir(dir).with_context(|| format!("cannot read directory {}", dir.display()))?;
    if entries.next().is_some() {
        bail!(
            "{} already exists and is not empty; nothing was written; \
             fix: choose another NAME or --dir, or remove that directory",
            dir.display()
        );
    }
    Ok(())
}

/// The SDK dependency for a Rust project at `project`: by path when the
/// project is inside a Dovetail checkout (so it builds against that SDK),
/// else by version.
fn sdk_dependency(project: &Path) -> String {
    let real = real_path(project);
    for root in real.ancestors().skip(1) {
        let manifest = root.join("policies/sdk/Cargo.toml");
        let is_sdk = fs::read_to_string(&manifest)
            .is_ok_and(|m| m.contains("name = \"dovetail-policy-sdk\""));
        if is_sdk {
            let depth = real
                .strip_prefix(root)
                .map(|p| p.components().count())
                .unwrap_or(0);
            let up = "../".repeat(depth);
            return format!("{{ path = \"{up}policies/sdk\" }}");
        }
    }
    format!("\"{SDK_VERSION}\"")
}

/// `path` with its existing part resolved (symlinks, `..`), so a relative
/// path between two places is counted in real directories.
fn real_path(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut base = path;
    loop {
        if let Ok(real) = fs::canonicalize(base) {
            let mut out = real;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other),
                }
            }
            return out;
        }
        match (base.parent(), base.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                base = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Every file of the project, by relative path, rendered in memory.
fn render(
    lang: &str,
    name: &str,
    decision: NewDecision,
    sdk: &str,
    extras: &[(&str, &'static Dir<'static>)],
) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for (into, dir) in extras {
        for (path, bytes) in walk(dir) {
            files.insert(Path::new(into).join(path), bytes.to_vec());
        }
    }
    let template = EMBEDDED
        .get_dir(Path::new("templates").join(lang))
        .with_context(|| format!("no template for language {lang:?}"))?;
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let ctx = minijinja::context! {
        name => name,
        ident => name.replace('-', "_"),
        selection => decision.selection(),
        scoring => decision.scoring(),
        world => decision.world(),
        sdk => sdk,
    };
    for (path, bytes) in walk(template) {
        let shown = format!("policies/templates/{lang}/{}", path.display());
        let source = std::str::from_utf8(bytes)
            .with_context(|| format!("template {shown} is not UTF-8 text"))?;
        let text = env
            .render_named_str(&shown, source, &ctx)
            .map_err(|e| anyhow::anyhow!("template {shown}: {e:#}"))?;
        // A block tag on the last line takes the final newline with it.
        let mut text = text;
        if source.ends_with('\n') && !text.ends_with('\n') {
            text.push('\n');
        }
        if text.trim().is_empty() {
            files.remove(&path);
        } else {
            files.insert(path, text.into_bytes());
        }
    }
    Ok(files)
}

/// Files under `dir`, by path relative to it.
fn walk(dir: &'static Dir<'static>) -> Vec<(PathBuf, &'static [u8])> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        stack.extend(d.dirs());
        for f in d.files() {
            let relative = f.path().strip_prefix(dir.path()).unwrap_or(f.path());
            out.push((relative.to_path_buf(), f.contents()));
        }
    }
    out
}

/// A directory being filled; removed unless [`Staging::commit`] renamed it
/// into place.
struct Staging {
    path: PathBuf,
    done: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

impl Staging {
    /// A new directory beside `dest`, with the permissions a plain
    /// `mkdir` gives (the user's umask).
    fn beside(dest: &Path) -> Result<Self> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
        let base = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "policy".into());
        for n in 0..100 {
            let path = parent.join(format!(".{base}.new-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path, done: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => bail!(
                    "cannot create a directory in {}: {e}; {UNWRITABLE}",
                    parent.display()
                ),
            }
        }
        bail!(
            "cannot create a staging directory in {}: too many left over; fix: remove the .{base}.new-* directories there",
            parent.display()
        )
    }

    fn commit(mut self, dest: &Path) -> Result<()> {
        // Onto an absent or empty directory only: rename(2) refuses a
        // non-empty one, so a directory filled meanwhile is never lost.
        fs::rename(&self.path, dest).with_context(|| {
            format!(
                "cannot move the new project into {}; fix: choose another NAME or --dir",
                dest.display()
            )
        })?;
        self.done = true;
        Ok(())
    }
}

fn write_project(dest: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<()> {
    let staging = Staging::beside(dest)?;
    for (path, bytes) in files {
        let target = staging.path.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))?;
        if bytes.starts_with(b"#!") {
            make_executable(&target)?;
        }
    }
    staging.commit(dest)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut perms = fs::metadata(path)?.permissions();
    // Execute wherever read is allowed, as `chmod +x` under the usual umask.
    perms.set_mode(perms.mode() | (perms.mode() & 0o444) >> 2);
    fs::set_permissions(path, perms)
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<()> {
    Ok(())
}
