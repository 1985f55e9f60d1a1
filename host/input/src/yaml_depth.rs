//! A linear pre-scan that refuses YAML nested past a limit before a parser
//! sees it. libyaml (under serde_norway) re-checks every open flow level on
//! each token, so text like `[[[[…` or `{a: {a: …` costs time quadratic in
//! its depth, and every block level (`- - - …`) costs memory: a 200 KB file
//! nested 100,000 levels deep took 17 s to reach the parser's own refusal.
//!
//! The scan follows YAML's structure as far as nesting is concerned: flow
//! brackets, block sequence entries, mapping keys and indentation, skipping
//! comments, quoted scalars and block scalars. It counts the collections
//! open at each point, never more than the parser would: each indentation
//! level of block collections once, plus each open bracket.

/// The deepest nesting accepted, in collections. The YAML parser itself
/// refuses anything deeper than 128; real Kubernetes objects stay far below
/// (a Deployment's affinity terms sit about 13 levels down).
pub const MAX_YAML_DEPTH: usize = 128;

/// YAML nested deeper than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line} column {column}: YAML nested more than {limit} levels deep; fix: flatten the document (no real Kubernetes object or scenario nests this deep), or check it is the right file"
)]
pub struct YamlTooDeep {
    /// 1-based.
    pub line: usize,
    /// 1-based, in bytes.
    pub column: usize,
    pub limit: usize,
}

/// Refuses `text` if its collections nest deeper than `limit` anywhere.
/// Runs in time linear in the text.
pub fn check_yaml_depth(text: &str, limit: usize) -> Result<(), YamlTooDeep> {
    Scan {
        limit,
        flow: 0,
        indents: Vec::new(),
        quote: None,
        block_scalar: None,
        node_start: true,
    }
    .run(text)
}

struct Scan {
    limit: usize,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Columns of the open block collections, increasing.
    indents: Vec<usize>,
    /// Inside a quoted scalar that may span lines.
    quote: Option<u8>,
    /// Inside a block scalar (`|`, `>`): lines indented deeper than this
    /// (`None` for the document root) belong to it.
    block_scalar: Option<Option<usize>>,
    /// At a place where a node may begin (indicators count only there).
    node_start: bool,
}

fn is_blank(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\t' | b'\r'))
}

impl Scan {
    fn run(mut self, text: &str) -> Result<(), YamlTooDeep> {
        for (n, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line).as_bytes();
            self.line(line, n + 1)?;
        }
        Ok(())
    }

    fn deeper(&self, line: usize, col: usize) -> Result<(), YamlTooDeep> {
        if self.flow + self.indents.len() > self.limit {
            return Err(YamlTooDeep {
                line,
                column: col + 1,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Opens a block collection at `col` unless one is open there already.
    fn open_block(&mut self, col: usize, line: usize) -> Result<(), YamlTooDeep> {
        if self.indents.last().is_none_or(|&top| col > top) {
            self.indents.push(col);
            self.deeper(line, col)?;
        }
        Ok(())
    }

    fn line(&mut self, s: &[u8], line: usize) -> Result<(), YamlTooDeep> {
        let indent = s.iter().take_while(|&&b| b == b' ').count();
        let content = &s[indent..];
        if let Some(parent) = self.block_scalar {
            let blank = content.iter().all(|&b| b == b' ' || b == b'\t');
            if blank || parent.is_none_or(|p| indent > p) {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut i = 0;
        if self.quote.is_none() && self.flow == 0 {
            if content.is_empty() || content[0] == b'#' || content[0] == b'\t' {
                return Ok(());
            }
            if indent == 0 && s[0] == b'%' {
                return Ok(()); // a directive
            }
            if indent == 0 && (s.starts_with(b"---") || s.starts_with(b"...")) && is_blank(s.get(3))
            {
                self.indents.clear();
                if s[0] == b'.' {
                    return Ok(());
                }
                i = 3;
            } else {
                while self.indents.last().is_some_and(|&top| top > indent) {
                    self.indents.pop();
                }
                i = indent;
            }
            self.node_start = true;
        }
        // Where the node that a `: ` would make a mapping key began.
        let mut key_col = i;
        while i < s.len() {
            let c = s[i];
            if let Some(q) = self.quote {
                if c == b'\\' && q == b'"' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == b'\'' && s.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                }
                i += 1;
                continue;
            }
            let next_blank = is_blank(s.get(i + 1));
            match c {
                b' ' | b'\t' => {}
                b'#' if i == 0 || matches!(s[i - 1], b' ' | b'\t') => return Ok(()),
                b'[' | b'{' if self.node_start || self.flow > 0 => {
                    if self.flow == 0 {
                        key_col = i;
                    }
                    self.flow += 1;
                    self.deeper(line, i)?;
                    self.node_start = true;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    self.node_start = false;
                }
                b',' if self.flow > 0 => self.node_start = true,
                b'"' | b'\'' if self.node_start => {
                    if self.flow == 0 {
                        key_col = i;
                    }
                    self.quote = Some(c);
                    self.node_start = false;
                }
                b':' if next_blank
                    || (self.flow > 0 && matches!(s.get(i + 1), Some(b',' | b']' | b'}'))) =>
                {
                    if self.flow == 0 && !self.node_start {
                        self.open_block(key_col, line)?;
                    }
                    self.node_start = true;
                }
                b'-' | b'?' if self.flow == 0 && self.node_start && next_blank => {
                    self.open_block(i, line)?;
                }
                b'|' | b'>' if self.flow == 0 && self.node_start => {
                    self.block_scalar = Some(self.indents.last().copied());
                    return Ok(());
                }
                b'&' | b'!' if self.node_start => {
                    // An anchor or tag: the node itself follows it.
                    while i < s.len() && !matches!(s[i], b' ' | b'\t') {
                        i += 1;
                    }
                    continue;
                }
                _ => {
                    if self.node_start && self.flow == 0 {
                        key_col = i;
                    }
                    self.node_start = false;
                }
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The depth the scan reaches: the smallest limit that accepts `text`.
    fn depth(text: &str) -> usize {
        (0..=1000)
            .find(|&l| check_yaml_depth(text, l).is_ok())
            .expect("under 1000")
    }

    #[test]
    fn counts_flow_brackets() {
        assert_eq!(depth("[1, 2]"), 1);
        assert_eq!(depth("[[[1]]]"), 3);
        assert_eq!(depth("{a: {b: [1, {c: d}]}}"), 4);
        assert_eq!(depth("a: [1, [2]]\nb: {c: 1}\n"), 3);
    }

    #[test]
    fn counts_block_levels() {
        assert_eq!(depth("a: 1\nb: 2\n"), 1);
        assert_eq!(depth("a:\n  b:\n    c: 1\n"), 3);
        assert_eq!(depth("- - - x\n"), 3);
        assert_eq!(depth("- a: 1\n  b:\n  - x\n"), 2);
        assert_eq!(depth("a:\n  - b: 1\n    c:\n      d: 2\nz: 1\n"), 4);
    }

    #[test]
    fn never_counts_more_than_a_parser_would() {
        // Brackets and keys inside scalars, comments and block scalars.
        let text = r#"
a: "[[[{{"  # [[[[
b: '[[['' [['
c: x[0] y{1},z]}
d: |
  [[[[[[
    - - - - -
      e: f: g:
f: >-
  {{{{{{
g: http://example.com/[x]
"#;
        assert_eq!(depth(text), 1);
    }

    #[test]
    fn a_block_scalar_ends_at_a_shallower_line() {
        let text = "a:\n  b: |\n    text\n\n    more\n  c:\n    d: 1\n";
        assert_eq!(depth(text), 3);
    }

    #[test]
    fn documents_start_afresh() {
        let text = "a:\n  b:\n    c: 1\n---\nd: 1\n--- [[1]]\n...\n";
        assert_eq!(depth(text), 3);
    }

    #[test]
    fn multi_line_flow_and_quotes() {
        let text = "a: [1,\n  [2,\n    \"x\n  ]\"],\n  3]\nb: 1\n";
        assert_eq!(depth(text), 3);
    }

    #[test]
    fn refuses_deep_text_naming_the_place_and_the_limit() {
        let err = check_yaml_depth(&"[".repeat(10_000), 128).unwrap_err();
        assert_eq!(
            err,
            YamlTooDeep {
                line: 1,
                column: 129,
                limit: 128
            }
        );
        assert!(err.to_string().contains("more than 128 levels"), "{err}");
        let dashes = format!("workloads:\n{}x\n", "- ".repeat(10_000));
        let err = check_yaml_depth(&dashes, 64).unwrap_err();
        assert_eq!((err.line, err.column), (2, 129));
        let maps = "{a: ".repeat(10_000);
        assert!(check_yaml_depth(&maps, 128).is_err());
        let nested: String = (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(check_yaml_depth(&nested, 128).unwrap_err().line, 129);
    }

    #[test]
    fn the_shipped_examples_pass_with_room() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut seen = 0;
        for dir in ["scenarios", "karpenter", "scenarios/kubectl-dump"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let d = depth(&text);
                    assert!((2..24).contains(&d), "{}: depth {d}", path.display());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 8, "only {seen} examples");
    }
}
