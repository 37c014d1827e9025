//! Architecture rules for the library in `src/`, checked against its source
//! text so that no change can quietly undo the layering.
//!
//! * `imports_follow_the_dependency_direction`: every `crate::…` and
//!   `super::…` path points down the [`LAYERS`] table (or sideways where a
//!   row allows it).
//! * `long_files_say_why`: a file with more than [`MAX_LINES_OF_CODE`] lines
//!   of code says near its top, in a `//! Why one file:` line, why it is not
//!   split.
//!
//! Both read every `.rs` file under `src/` at test time. The reader is a small
//! hand-written lexer, not a Rust parser (std only, no `syn`):
//!
//! 1. Comments become spaces and the contents of string and char literals
//!    become `_` (delimiters, whitespace and newlines are kept, so line
//!    numbers and "is this line blank" survive).
//! 2. The text is split into identifiers, `::` and single punctuation chars.
//! 3. Items under a test-only `#[cfg(..)]` (`test`, or `all(..)` with `test`
//!    in it) are blanked out; their extent is found by bracket depth. A
//!    test-only `mod name;` hides the file of that module and everything
//!    below it; `#![cfg(test)]` at the top of a file hides the whole file.
//! 4. Every `crate::` / `super::` path (in `use` trees and inline alike) is
//!    read: `super::` is resolved against the module the path sits in (the
//!    file's module plus any inline `mod x { .. }` around it), each branch of
//!    a `{ .. }` group becomes its own path, and a name right under the crate
//!    root (`crate::Error`) is looked up among the top-level modules and the
//!    `use` items of `src/lib.rs`.
//!
//! Each broken rule is reported with its file, line, path and a tag naming
//! the rule: `[dependency direction]`, `[unresolved path]` (a root-level name
//! that is neither a top-level module nor brought in by lib.rs), `[no layer]`
//! (a top-level module the table does not list: reported once, with what it
//! imports and what imports it; paths into or out of it are checked once it
//! has a layer) and `[long file]`. Run with `--nocapture` to also see a
//! per-layer summary.
//!
//! Known limits: `#[path = ".."]` attributes and `include!` are not followed;
//! `self::super::x` is not read as a path; relative paths without `crate`
//! or `super` (`use child::X` through a child module) are not checked, as they
//! cannot leave the module; macro bodies are scanned as plain tokens (so a
//! `$crate::x` counts as `crate::x` where the macro is written); a glob
//! re-export in lib.rs (`pub use x::*`) resolves no names; the extent of a
//! `#[cfg(test)]` item is found by brackets, which is right for items,
//! fields and statements but can end an expression early.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

// ---------------------------------------------------------------------------
// The rules: edit these to change the architecture.
// ---------------------------------------------------------------------------

/// One row of [`LAYERS`].
struct Layer {
    /// The layer's name, as used in `may_import` and in messages.
    name: &'static str,
    /// The top-level modules of `src/` (first path segment) in this layer.
    modules: &'static [&'static str],
    /// The layers whose modules this layer's modules may name in a path.
    may_import: &'static [&'static str],
}

/// Shorthand that keeps each row of [`LAYERS`] on one line.
const fn layer(
    name: &'static str,
    modules: &'static [&'static str],
    may_import: &'static [&'static str],
) -> Layer {
    Layer {
        name,
        modules,
        may_import,
    }
}

/// In a `may_import` list: every layer.
const ANYTHING: &str = "*";

/// The crate root (`src/lib.rs`) as a module name in [`LAYERS`]. `crate` is a
/// keyword, so no real module can be called that.
const ROOT: &str = "crate";

/// The dependency direction of the library, from the bottom up.
///
/// A module may name, in a `crate::`/`super::` path, its own top-level module
/// and the modules of the layers its row lists, and nothing else. So every
/// dependency points down this table: a lower layer can be read, tested and
/// changed without the layers above it. Sideways imports are allowed only
/// where a row lists its own layer (`leaves`, `handles`). The layer of a file
/// is the layer of its top-level module (`src/lsm/sstable/reader.rs` is in
/// `lsm`). A top-level module of `src/` that no row lists fails the test, so
/// that a new module gets placed on purpose.
#[rustfmt::skip]
const LAYERS: &[Layer] = &[
    //    layer       top-level modules                                may import
    layer("leaves",   &["coding", "error", "value", "files", "stats"],  &["leaves"]),
    layer("io",       &["io"],                                         &["leaves"]),
    layer("options",  &["options"],                                    &["io", "leaves"]),
    layer("vlog",     &["vlog"],                                       &["io", "leaves"]),
    layer("keydir",   &["keydir"],                                     &["vlog", "io", "leaves"]),
    // Never vlog: the sorted index holds value pointers as opaque bytes.
    layer("lsm",      &["lsm"],                                        &["io", "leaves"]),
    layer("manifest", &["manifest"],
          &["vlog", "lsm", "keydir", "io", "options", "leaves"]),
    layer("engine",   &["engine"],
          &["manifest", "vlog", "lsm", "keydir", "io", "options", "leaves"]),
    layer("handles",  &["db", "table", "snapshot", "batch", "iter", "verify", "inspect", "cas",
                        "read_options"],
          &["handles", "engine", "manifest", "vlog", "lsm", "keydir", "io", "options", "leaves"]),
    layer("testing",  &["testing"],                                    &[ANYTHING]),
    layer("root",     &[ROOT],                                         &[ANYTHING]),
];

/// Above this many lines of code a file must say why it is one file.
const MAX_LINES_OF_CODE: usize = 600;

/// The line that gives the reason, e.g. `//! Why one file: the format is
/// specified in one place.`
const REASON_MARKER: &str = "//! Why one file:";

/// The reason must appear within this many lines from the top of the file.
const REASON_WITHIN_LINES: usize = 40;

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn imports_follow_the_dependency_direction() {
    let krate = scan_crate(read_sources());
    let report = check_imports(&krate);
    eprintln!("{}", summary(&krate, &report));
    assert!(
        report.violations.is_empty(),
        "{}",
        failure_message("import", &report.violations)
    );
}

#[test]
fn long_files_say_why() {
    let krate = scan_crate(read_sources());
    let violations = long_file_violations(&krate);
    eprintln!("{}", length_summary(&krate));
    assert!(
        violations.is_empty(),
        "{}",
        failure_message("file length", &violations)
    );
}

/// The table itself must make sense, or the rules above mean nothing.
#[test]
fn layer_table_is_consistent() {
    let mut seen = BTreeSet::new();
    for row in LAYERS {
        for module in row.modules {
            assert!(seen.insert(*module), "`{module}` is in two layers");
        }
        for target in row.may_import {
            assert!(
                *target == ANYTHING || LAYERS.iter().any(|l| l.name == *target),
                "layer `{}` may import `{target}`, which is no layer",
                row.name
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Reading src/.
// ---------------------------------------------------------------------------

/// A source file as read from disk.
struct SourceFile {
    /// Path relative to `src/`, `/`-separated: `lsm/sstable/reader.rs`.
    rel: String,
    text: String,
}

/// Every `.rs` file under `src/`, in path order (so messages are stable).
fn read_sources() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut rels = Vec::new();
    collect_rs_files(&src, &src, &mut rels);
    rels.sort();
    rels.into_iter()
        .map(|rel| {
            let path = src.join(&rel);
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            SourceFile { rel, text }
        })
        .collect()
}

fn collect_rs_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_rs_files(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let rel = path.strip_prefix(root).expect("under src/");
            let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
            out.push(parts.join("/"));
        }
    }
}

/// The module a file defines: `lib.rs` is the root (empty path), `a.rs` and
/// `a/mod.rs` are `a`, `a/b.rs` is `a::b`.
fn module_path(rel: &str) -> Vec<String> {
    let mut segments: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if segments == ["lib"] || segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    segments
}

// ---------------------------------------------------------------------------
// Lexing: comments and literals out, then tokens.
// ---------------------------------------------------------------------------

/// Blanks comments and the contents of string and char literals, keeping
/// every newline and every character's position.
///
/// Comments become spaces. A literal keeps its delimiters and whitespace and
/// the rest becomes `_`: `"crate::x"` or `'{'` can then no longer pass for a
/// path or a brace, and a line inside a multi-line string still counts as a
/// line of code.
fn mask_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        i = match (chars[i], chars.get(i + 1)) {
            ('/', Some('/')) => mask_line_comment(&chars, i, &mut out),
            ('/', Some('*')) => mask_block_comment(&chars, i, &mut out),
            ('"', _) => mask_quoted(&chars, i, &mut out),
            ('\'', _) if is_char_literal(&chars, i) => mask_quoted(&chars, i, &mut out),
            ('r', _) if raw_string_hashes(&chars, i).is_some() => {
                mask_raw_string(&chars, i, &mut out)
            }
            (c, _) => {
                out.push(c);
                i + 1
            }
        };
    }
    out.into_iter().collect()
}

/// What a character inside a literal becomes.
fn masked_literal_char(c: char) -> char {
    if c.is_whitespace() {
        c
    } else {
        '_'
    }
}

/// What a character inside a comment becomes.
fn masked_comment_char(c: char) -> char {
    if c == '\n' {
        '\n'
    } else {
        ' '
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Masks `//…` up to (not including) the newline; returns the index after.
fn mask_line_comment(chars: &[char], start: usize, out: &mut Vec<char>) -> usize {
    let mut i = start;
    while i < chars.len() && chars[i] != '\n' {
        out.push(' ');
        i += 1;
    }
    i
}

/// Masks `/* … */`, which nest in Rust; returns the index after.
fn mask_block_comment(chars: &[char], start: usize, out: &mut Vec<char>) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        let pair = (chars[i], chars.get(i + 1).copied());
        if pair == ('/', Some('*')) {
            depth += 1;
        } else if pair == ('*', Some('/')) {
            depth -= 1;
        } else {
            out.push(masked_comment_char(chars[i]));
            i += 1;
            continue;
        }
        out.push(' ');
        out.push(' ');
        i += 2;
        if depth == 0 {
            break;
        }
    }
    i
}

/// Masks a `"…"` string or `'…'` char literal starting at `start` (the
/// quote), honouring backslash escapes; returns the index after.
fn mask_quoted(chars: &[char], start: usize, out: &mut Vec<char>) -> usize {
    let quote = chars[start];
    out.push(quote);
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        let escaped = chars[i] == '\\';
        out.push(masked_literal_char(chars[i]));
        i += 1;
        if escaped && i < chars.len() {
            out.push(masked_literal_char(chars[i]));
            i += 1;
        }
    }
    if i < chars.len() {
        out.push(quote);
        i += 1;
    }
    i
}

/// Whether the `'` at `i` opens a char literal (`'a'`, `'\n'`, `'"'`) rather
/// than a lifetime or label (`'a`, `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some('\'') | None => false,
        Some(_) => chars.get(i + 2) == Some(&'\''),
    }
}

/// If the `r` at `i` opens a raw string (`r"`, `r#"`, also after `b`/`c`),
/// the number of `#`s. `r#ident` (a raw identifier) and an `r` ending an
/// identifier are not raw strings.
fn raw_string_hashes(chars: &[char], i: usize) -> Option<usize> {
    let before = |n: usize| i.checked_sub(n).map(|k| chars[k]);
    let starts_token = match before(1) {
        None => true,
        Some('b' | 'c') => !before(2).is_some_and(is_ident_char),
        Some(c) => !is_ident_char(c),
    };
    if !starts_token {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// Masks `r#"…"#` starting at the `r`; returns the index after.
fn mask_raw_string(chars: &[char], start: usize, out: &mut Vec<char>) -> usize {
    let hashes = raw_string_hashes(chars, start).expect("caller checked");
    let open = 2 + hashes;
    out.extend_from_slice(&chars[start..start + open]);
    let mut i = start + open;
    while i < chars.len() {
        let closes = chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes;
        if closes {
            out.extend_from_slice(&chars[i..i + 1 + hashes]);
            return i + 1 + hashes;
        }
        out.push(masked_literal_char(chars[i]));
        i += 1;
    }
    i
}

/// An identifier (or number), `::`, or one punctuation character.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    /// 1-based line.
    line: usize,
    /// Char offsets into the masked text: `start..end`.
    start: usize,
    end: usize,
    /// An identifier or keyword (not a number or punctuation).
    ident: bool,
}

/// Splits masked text (see [`mask_comments_and_literals`]) into tokens.
fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            line += usize::from(c == '\n');
            i += 1;
            continue;
        }
        let end = if is_ident_char(c) {
            i + chars[i..].iter().take_while(|c| is_ident_char(**c)).count()
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            i + 2
        } else {
            i + 1
        };
        tokens.push(Token {
            text: chars[i..end].iter().collect(),
            line,
            start: i,
            end,
            ident: !c.is_numeric() && is_ident_char(c),
        });
        i = end;
    }
    tokens
}

/// The text of token `i`, or `""` past the end (keeps look-ahead simple).
fn text(tokens: &[Token], i: usize) -> &str {
    tokens.get(i).map_or("", |t| t.text.as_str())
}

fn is_ident(tokens: &[Token], i: usize) -> bool {
    tokens.get(i).is_some_and(|t| t.ident)
}

/// The index of the bracket closing the one at `open`, counting all of
/// `()[]{}`; `tokens.len()` if it never closes.
fn matching_close(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Tracks brace depth and the inline `mod x { … }` blocks around a token, so
/// that `super::` inside them resolves right.
#[derive(Default)]
struct Scope {
    depth: usize,
    /// Inline modules entered, with the depth of their `{`.
    inline: Vec<(String, usize)>,
    /// `mod x` seen, its `{` not yet.
    pending_mod: Option<String>,
}

impl Scope {
    /// Updates the scope for token `i`; call it for every token walked over.
    fn observe(&mut self, tokens: &[Token], i: usize) {
        match text(tokens, i) {
            "mod" if is_ident(tokens, i + 1) && text(tokens, i + 2) == "{" => {
                self.pending_mod = Some(text(tokens, i + 1).to_string());
            }
            "{" => {
                self.depth += 1;
                if let Some(name) = self.pending_mod.take() {
                    self.inline.push((name, self.depth));
                }
            }
            "}" => {
                if self.inline.last().is_some_and(|(_, d)| *d == self.depth) {
                    self.inline.pop();
                }
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
    }

    /// The absolute module path at this point of a file defining `file_module`.
    fn module(&self, file_module: &[String]) -> Vec<String> {
        let inline = self.inline.iter().map(|(name, _)| name.clone());
        file_module.iter().cloned().chain(inline).collect()
    }
}

// ---------------------------------------------------------------------------
// Test-only code: `#[cfg(test)]` items are skipped.
// ---------------------------------------------------------------------------

/// What test-only `#[cfg(..)]` attributes hide in one file.
#[derive(Default, Debug)]
struct TestItems {
    /// Char ranges of the masked text to blank (attribute and item).
    spans: Vec<(usize, usize)>,
    /// Absolute paths of test-only modules declared here (`mod tests;` or
    /// `mod tests { .. }`); their files are skipped too.
    modules: Vec<Vec<String>>,
    /// `#![cfg(test)]` at the top: the whole file is test code.
    whole_file: bool,
}

/// Finds the test-only items of a file defining `file_module`.
fn find_test_items(tokens: &[Token], file_module: &[String]) -> TestItems {
    let mut found = TestItems::default();
    let mut scope = Scope::default();
    let mut i = 0;
    while i < tokens.len() {
        let Some(attr_end) = cfg_test_attribute(tokens, i) else {
            scope.observe(tokens, i);
            i += 1;
            continue;
        };
        if text(tokens, i + 1) == "!" {
            // An inner attribute deeper down (in an inline module) is not
            // handled: see the limits at the top.
            found.whole_file |= scope.depth == 0;
            i = attr_end;
            continue;
        }
        let item = item_extent(tokens, attr_end);
        if let Some(name) = item.mod_name {
            let mut module = scope.module(file_module);
            module.push(name);
            found.modules.push(module);
        }
        found
            .spans
            .push((tokens[i].start, tokens[item.end - 1].end));
        i = item.end;
    }
    found
}

/// If token `i` starts `#[cfg(P)]` or `#![cfg(P)]` with a test-only `P`, the
/// index after its `]`.
fn cfg_test_attribute(tokens: &[Token], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if text(tokens, i) != "#" {
        return None;
    }
    if text(tokens, j) == "!" {
        j += 1;
    }
    let opens = [text(tokens, j), text(tokens, j + 1), text(tokens, j + 2)] == ["[", "cfg", "("];
    if !opens {
        return None;
    }
    j += 3;
    let test_only = cfg_predicate_is_test_only(tokens, &mut j);
    let closes = text(tokens, j) == ")" && text(tokens, j + 1) == "]";
    (test_only && closes).then_some(j + 2)
}

/// Reads one cfg predicate at `*j` (advancing past it): is it true only when
/// compiling tests? `test` is; `all(..)` is if one part is; `any(..)` is if
/// every part is; `not(..)`, `feature = ".."` and the rest are not, so
/// `#[cfg(any(test, feature = "testing"))]` code is checked like any other.
fn cfg_predicate_is_test_only(tokens: &[Token], j: &mut usize) -> bool {
    let word = text(tokens, *j).to_string();
    let is_group = matches!(word.as_str(), "all" | "any" | "not") && text(tokens, *j + 1) == "(";
    if !is_group {
        *j += 1;
        let has_value = text(tokens, *j) == "=";
        if has_value {
            *j += 1;
            skip_literal(tokens, j);
        }
        return word == "test" && !has_value;
    }
    *j += 2;
    let mut parts = Vec::new();
    while !matches!(text(tokens, *j), ")" | "") {
        parts.push(cfg_predicate_is_test_only(tokens, j));
        if text(tokens, *j) == "," {
            *j += 1;
        }
    }
    *j += 1;
    match word.as_str() {
        "all" => parts.iter().any(|p| *p),
        "any" => !parts.is_empty() && parts.iter().all(|p| *p),
        _ => false,
    }
}

/// Steps over a (masked) literal: `"…"` is several tokens, a number one.
fn skip_literal(tokens: &[Token], j: &mut usize) {
    if text(tokens, *j) == "\"" {
        *j += 1;
        while !matches!(text(tokens, *j), "\"" | "") {
            *j += 1;
        }
    }
    *j += 1;
}

/// The extent of the item an attribute applies to.
struct Item {
    /// Index after its last token.
    end: usize,
    /// For `mod name`, the name.
    mod_name: Option<String>,
}

/// Item keywords: such an item ends at `;` or `}`, never at a `,` (which
/// may sit in its generics or where clause).
const ITEM_KEYWORDS: &str =
    "mod fn use impl struct enum union trait type const static unsafe async extern macro_rules let";

/// Finds where the item starting at `start` (just after an attribute) ends,
/// by bracket depth: at a `;` outside brackets, after the `}` that closes its
/// body (and a `;` right after), or, for a field, variant or match arm, at a
/// `,`; never past the `}` of the block around it.
fn item_extent(tokens: &[Token], start: usize) -> Item {
    let head = item_head(tokens, start);
    let keyword = text(tokens, head);
    let is_keyword_item = ITEM_KEYWORDS.split(' ').any(|k| k == keyword);
    // `use`, `static`, `let`, `type` and `const X: T = …` end only at their `;`,
    // even when a `{…}` group or struct literal closes first.
    let ends_at_semicolon = matches!(keyword, "use" | "static" | "let" | "type")
        || (keyword == "const" && text(tokens, head + 2) == ":");
    let mod_name = (keyword == "mod" && is_ident(tokens, head + 1))
        .then(|| text(tokens, head + 1).to_string());
    let mut depth = 0usize;
    let mut k = start;
    while k < tokens.len() {
        match text(tokens, k) {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => break,
            ")" | "]" => depth -= 1,
            "}" => {
                depth -= 1;
                if depth == 0 && !ends_at_semicolon {
                    k += 1 + usize::from(text(tokens, k + 1) == ";");
                    break;
                }
            }
            ";" if depth == 0 => {
                k += 1;
                break;
            }
            "," if depth == 0 && !is_keyword_item => {
                k += 1;
                break;
            }
            _ => {}
        }
        k += 1;
    }
    Item { end: k, mod_name }
}

/// The first token of an item that is not an attribute or a visibility.
fn item_head(tokens: &[Token], start: usize) -> usize {
    let mut k = start;
    loop {
        if text(tokens, k) == "#" && text(tokens, k + 1) == "[" {
            k = matching_close(tokens, k + 1) + 1;
        } else if text(tokens, k) == "pub" {
            k += 1;
            if text(tokens, k) == "(" {
                k = matching_close(tokens, k) + 1;
            }
        } else {
            return k;
        }
    }
}

/// The masked text with the given char ranges blanked (newlines kept).
fn blank_spans(masked: &str, spans: &[(usize, usize)]) -> String {
    let mut chars: Vec<char> = masked.chars().collect();
    for &(start, end) in spans {
        for c in &mut chars[start..end] {
            *c = masked_comment_char(*c);
        }
    }
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------
// Paths: `crate::…` and `super::…`.
// ---------------------------------------------------------------------------

/// Where a path leads, as far as one file can tell.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// Into this top-level module.
    Module(String),
    /// To a name right under the crate root (`crate::Error`): a top-level
    /// module or something `src/lib.rs` brings in with `use`.
    RootName(String),
    /// Somewhere the rules cannot place; says what.
    Unplaceable(&'static str),
}

/// One `crate::`/`super::` path found in a file.
#[derive(Debug, Clone)]
struct PathRef {
    line: usize,
    /// The path as written (one branch of a `{..}` group): `crate::lsm::ikey`.
    text: String,
    /// The absolute module the path is written in.
    from: Vec<String>,
    target: Target,
}

impl PathRef {
    /// The top-level module the path is written in, `crate` in lib.rs.
    fn source_top(&self) -> &str {
        self.from.first().map_or(ROOT, String::as_str)
    }
}

/// All `crate::`/`super::` paths in a file defining `file_module`, from its
/// tokens with test code already blanked.
fn extract_paths(tokens: &[Token], file_module: &[String]) -> Vec<PathRef> {
    let mut paths = Vec::new();
    let mut scope = Scope::default();
    let mut i = 0;
    while i < tokens.len() {
        if starts_path(tokens, i) {
            let from = scope.module(file_module);
            // A path's own brackets balance, so skipping them keeps `scope` right.
            i = read_path(tokens, i, &from, &mut paths);
        } else {
            scope.observe(tokens, i);
            i += 1;
        }
    }
    paths
}

/// `crate::` or `super::`, not in the middle of another path.
fn starts_path(tokens: &[Token], i: usize) -> bool {
    matches!(text(tokens, i), "crate" | "super")
        && text(tokens, i + 1) == "::"
        && (i == 0 || text(tokens, i - 1) != "::")
}

/// Reads the path at `i` into `out` (one entry per branch of a group) and
/// returns the index after it.
fn read_path(tokens: &[Token], i: usize, from: &[String], out: &mut Vec<PathRef>) -> usize {
    let (prefix, base, j) = read_prefix(tokens, i, from);
    let (branches, end) = read_tail(tokens, j);
    for branch in branches {
        let target = match (&base, &branch.head) {
            (None, _) => Target::Unplaceable("`super::` climbs above the crate root"),
            (Some(base), _) if !base.is_empty() => Target::Module(base[0].clone()),
            (Some(_), Head::Name(name)) => Target::RootName(name.clone()),
            (Some(_), Head::SelfModule) => Target::Unplaceable("the crate root itself"),
            (Some(_), Head::Glob) => Target::Unplaceable("a glob of the crate root"),
        };
        out.push(PathRef {
            line: branch.line,
            text: format!("{prefix}{}", branch.text),
            from: from.to_vec(),
            target,
        });
    }
    end.max(j)
}

/// Reads `crate::` or `super::super::…` at `i`: the prefix as written, the
/// absolute module it names (`None` above the root) and the index after it.
fn read_prefix(
    tokens: &[Token],
    i: usize,
    from: &[String],
) -> (String, Option<Vec<String>>, usize) {
    if text(tokens, i) == "crate" {
        return ("crate::".to_string(), Some(Vec::new()), i + 2);
    }
    let mut j = i;
    let mut ups = 0;
    while text(tokens, j) == "super" && text(tokens, j + 1) == "::" {
        ups += 1;
        j += 2;
    }
    let base = from.len().checked_sub(ups).map(|n| from[..n].to_vec());
    ("super::".repeat(ups), base, j)
}

/// The first segment of one branch of a path.
#[derive(Debug, Clone, PartialEq)]
enum Head {
    Name(String),
    /// `self`, as in `use crate::{self}`.
    SelfModule,
    /// `*`.
    Glob,
}

/// One branch of a path after its prefix: `a::B` in `crate::{a::B, c}`.
#[derive(Debug, Clone)]
struct Branch {
    head: Head,
    /// The branch as written, a nested group shortened to `{..}`.
    text: String,
    line: usize,
}

/// Reads what follows a prefix: one branch, or a `{..}` group of them.
fn read_tail(tokens: &[Token], j: usize) -> (Vec<Branch>, usize) {
    if text(tokens, j) == "{" {
        return read_group(tokens, j);
    }
    match read_branch(tokens, j) {
        Some((branch, end)) => (vec![branch], end),
        None => (Vec::new(), j),
    }
}

/// Reads the branches of the group whose `{` is at `open`; only each
/// branch's first segment matters, so nested groups are not entered.
fn read_group(tokens: &[Token], open: usize) -> (Vec<Branch>, usize) {
    let close = matching_close(tokens, open);
    let mut branches = Vec::new();
    let mut k = open + 1;
    while k < close {
        if let Some((branch, end)) = read_branch(tokens, k) {
            branches.push(branch);
            k = end;
        }
        k = next_group_item(tokens, k, close);
    }
    (branches, close + 1)
}

/// The index after the `,` that ends the group item at `k` (or `close`).
fn next_group_item(tokens: &[Token], mut k: usize, close: usize) -> usize {
    let mut depth = 0usize;
    while k < close {
        match text(tokens, k) {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = depth.saturating_sub(1),
            "," if depth == 0 => return k + 1,
            _ => {}
        }
        k += 1;
    }
    close
}

/// Reads one branch at `k`: `a::b::C`, `self` or `*`.
fn read_branch(tokens: &[Token], k: usize) -> Option<(Branch, usize)> {
    let token = tokens.get(k)?;
    let head = match token.text.as_str() {
        "*" => Head::Glob,
        "self" => Head::SelfModule,
        name if token.ident => Head::Name(name.to_string()),
        _ => return None,
    };
    let (text, end) = read_segments(tokens, k);
    let branch = Branch {
        head,
        text,
        line: token.line,
    };
    Some((branch, end))
}

/// Reads `a::b::C` from `k` for display, stopping at a group (`::{..}`),
/// a glob or anything that is not a segment; returns it and the index after.
fn read_segments(tokens: &[Token], k: usize) -> (String, usize) {
    let mut shown = text(tokens, k).to_string();
    let mut k = k + 1;
    while text(tokens, k) == "::" {
        match text(tokens, k + 1) {
            "{" => {
                shown.push_str("::{..}");
                k = matching_close(tokens, k + 1) + 1;
                break;
            }
            "*" => {
                shown.push_str("::*");
                k += 2;
                break;
            }
            _ if is_ident(tokens, k + 1) => {
                shown.push_str("::");
                shown.push_str(text(tokens, k + 1));
                k += 2;
            }
            _ => break,
        }
    }
    (shown, k)
}

// ---------------------------------------------------------------------------
// The crate root: its modules and the names it brings in.
// ---------------------------------------------------------------------------

/// The `mod x` declarations of lib.rs and the names its `use` items bring
/// into the crate root, each mapped to the first segment of its path
/// (`pub use error::{Error, Result};` gives `Error → error`, `Result → error`).
fn root_declarations(tokens: &[Token]) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut modules = BTreeSet::new();
    let mut names = BTreeMap::new();
    let mut scope = Scope::default();
    for i in 0..tokens.len() {
        if scope.depth == 0 {
            match text(tokens, i) {
                "mod" if is_ident(tokens, i + 1) => {
                    modules.insert(text(tokens, i + 1).to_string());
                }
                "use" => {
                    let mut leaves = Vec::new();
                    read_use_tree(tokens, i + 1, Vec::new(), &mut leaves);
                    names.extend(leaves.into_iter().filter_map(UseLeaf::root_entry));
                }
                _ => {}
            }
        }
        scope.observe(tokens, i);
    }
    (modules, names)
}

/// A name a `use` item brings in, with its full path.
#[derive(Debug)]
struct UseLeaf {
    path: Vec<String>,
    /// The name it is known by (its alias, if any); `None` for a glob or `_`.
    name: Option<String>,
}

impl UseLeaf {
    /// `name → first segment of the path`, skipping `crate`/`self`.
    fn root_entry(self) -> Option<(String, String)> {
        let first = self
            .path
            .iter()
            .find(|s| !matches!(s.as_str(), "crate" | "self"))?;
        Some((self.name?, first.clone()))
    }
}

/// Reads the use tree at `i` (after `use`, or inside a group) with the
/// segments `prefix` before it; pushes its leaves and returns the index after.
fn read_use_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<UseLeaf>,
) -> usize {
    loop {
        match text(tokens, i) {
            "::" => i += 1,
            "*" => {
                out.push(UseLeaf {
                    path: prefix,
                    name: None,
                });
                return i + 1;
            }
            "{" => return read_use_group(tokens, i, &prefix, out),
            segment if is_ident(tokens, i) => {
                if text(tokens, i + 1) == "::" {
                    prefix.push(segment.to_string());
                    i += 2;
                    continue;
                }
                let mut name = if segment == "self" {
                    prefix.last().cloned()
                } else {
                    Some(segment.to_string())
                };
                if segment != "self" {
                    prefix.push(segment.to_string());
                }
                i += 1;
                if text(tokens, i) == "as" {
                    name = Some(text(tokens, i + 1).to_string()).filter(|n| n != "_");
                    i += 2;
                }
                out.push(UseLeaf { path: prefix, name });
                return i;
            }
            _ => return i + 1,
        }
    }
}

/// Reads the `{..}` group at `open` of a use tree; returns the index after.
fn read_use_group(
    tokens: &[Token],
    open: usize,
    prefix: &[String],
    out: &mut Vec<UseLeaf>,
) -> usize {
    let close = matching_close(tokens, open);
    let mut k = open + 1;
    while k < close {
        k = read_use_tree(tokens, k, prefix.to_vec(), out);
        k = next_group_item(tokens, k, close);
    }
    close + 1
}

// ---------------------------------------------------------------------------
// Scanning the crate.
// ---------------------------------------------------------------------------

/// A non-test source file, read.
struct ScannedFile {
    /// `src/…`, for messages.
    display: String,
    module: Vec<String>,
    /// The file as written (for the `//! Why one file:` line).
    raw: String,
    /// Comments, literal contents and test code blanked.
    code: String,
    paths: Vec<PathRef>,
}

impl ScannedFile {
    /// The file's top-level module, `crate` for lib.rs.
    fn top(&self) -> &str {
        self.module.first().map_or(ROOT, String::as_str)
    }
}

/// Everything the rules look at.
struct Crate {
    files: Vec<ScannedFile>,
    /// Files that are all test code (`src/…`).
    test_only: Vec<String>,
    /// The top-level modules: declared in lib.rs or found as files.
    top_modules: BTreeSet<String>,
    /// lib.rs `use` items: root name → first segment of its path.
    root_names: BTreeMap<String, String>,
}

/// Reads `sources` (paths relative to `src/`) into a [`Crate`].
fn scan_crate(sources: Vec<SourceFile>) -> Crate {
    let prepared: Vec<_> = sources
        .into_iter()
        .map(|source| {
            let module = module_path(&source.rel);
            let masked = mask_comments_and_literals(&source.text);
            let items = find_test_items(&tokenize(&masked), &module);
            (source, module, masked, items)
        })
        .collect();
    let test_modules: Vec<Vec<String>> = prepared
        .iter()
        .flat_map(|p| p.3.modules.iter().cloned())
        .collect();
    let mut krate = Crate {
        files: Vec::new(),
        test_only: Vec::new(),
        top_modules: BTreeSet::new(),
        root_names: BTreeMap::new(),
    };
    for (source, module, masked, items) in prepared {
        let display = format!("src/{}", source.rel);
        if items.whole_file || test_modules.iter().any(|m| module.starts_with(m)) {
            krate.test_only.push(display);
            continue;
        }
        let code = blank_spans(&masked, &items.spans);
        let tokens = tokenize(&code);
        if module.is_empty() {
            let (modules, names) = root_declarations(&tokens);
            krate.top_modules.extend(modules);
            krate.root_names = names;
        }
        krate.top_modules.extend(module.first().cloned());
        let paths = extract_paths(&tokens, &module);
        krate.files.push(ScannedFile {
            display,
            module,
            raw: source.text,
            code,
            paths,
        });
    }
    krate
}

// ---------------------------------------------------------------------------
// Rule 1: the dependency direction.
// ---------------------------------------------------------------------------

/// One broken rule and where.
#[derive(Debug)]
struct Violation {
    /// `src/…`.
    file: String,
    /// 0 when it is about the whole file or module.
    line: usize,
    /// Which rule, the path, and why.
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

fn layer_of(module: &str) -> Option<&'static Layer> {
    LAYERS.iter().find(|l| l.modules.contains(&module))
}

fn may_import(from: &Layer, to: &Layer) -> bool {
    from.may_import
        .iter()
        .any(|l| *l == ANYTHING || *l == to.name)
}

/// The result of checking every path.
struct ImportReport {
    violations: Vec<Violation>,
    /// Paths checked (each branch of a group counts).
    paths: usize,
    /// Paths not checked for direction because one end has no layer (that
    /// module is reported instead).
    unchecked: usize,
}

/// Checks every path of every file against [`LAYERS`], and that every
/// top-level module has a layer.
fn check_imports(krate: &Crate) -> ImportReport {
    let mut report = ImportReport {
        violations: layerless_modules(krate),
        paths: 0,
        unchecked: 0,
    };
    for file in &krate.files {
        for path in &file.paths {
            report.paths += 1;
            let from = path.source_top();
            let to = match resolve(krate, &path.target) {
                Ok(Some(to)) => to,
                Ok(None) => continue,
                Err(why) => {
                    report.violations.push(Violation {
                        file: file.display.clone(),
                        line: path.line,
                        message: format!("[unresolved path] `{}`: {why}", path.text),
                    });
                    continue;
                }
            };
            if from == to {
                continue;
            }
            let (Some(from_layer), Some(to_layer)) = (layer_of(from), layer_of(to)) else {
                report.unchecked += 1;
                continue;
            };
            if !may_import(from_layer, to_layer) {
                report.violations.push(Violation {
                    file: file.display.clone(),
                    line: path.line,
                    message: direction_message(path, from, from_layer, to, to_layer),
                });
            }
        }
    }
    report
}

fn direction_message(
    path: &PathRef,
    from: &str,
    from_layer: &Layer,
    to: &str,
    to_layer: &Layer,
) -> String {
    format!(
        "[dependency direction] `{}`: `{from}` (layer {}) may not import `{to}` \
         (layer {}); {} may import: {}",
        path.text,
        from_layer.name,
        to_layer.name,
        from_layer.name,
        from_layer.may_import.join(", ")
    )
}

/// The top-level module a target lands in: `Ok(None)` for a root name that
/// lib.rs takes from outside the crate (`pub use std::…`), which no rule
/// covers; `Err` for a path the rules cannot place.
fn resolve<'a>(krate: &'a Crate, target: &'a Target) -> Result<Option<&'a str>, String> {
    match target {
        Target::Module(module) => Ok(Some(module)),
        Target::Unplaceable(why) => Err(format!("names {why}, which has no layer")),
        Target::RootName(name) if krate.top_modules.contains(name) => Ok(Some(name)),
        Target::RootName(name) => match krate.root_names.get(name) {
            Some(module) if krate.top_modules.contains(module) => Ok(Some(module)),
            Some(_) => Ok(None),
            None => Err(format!(
                "`{name}` is neither a top-level module \
                 nor brought into the crate root by src/lib.rs"
            )),
        },
    }
}

/// One violation per top-level module that [`LAYERS`] does not list, with
/// what it imports and what imports it (the paths that are checked once it
/// has a layer), to help place it.
fn layerless_modules(krate: &Crate) -> Vec<Violation> {
    let links = module_links(krate);
    let mut violations = Vec::new();
    for module in &krate.top_modules {
        if layer_of(module).is_some() {
            continue;
        }
        let files: Vec<&str> = krate
            .files
            .iter()
            .filter(|f| f.top() == module)
            .map(|f| f.display.as_str())
            .collect();
        let imports: Vec<&str> = links
            .iter()
            .filter(|l| l.0 == module)
            .map(|l| l.1)
            .collect();
        let imported_by: Vec<&str> = links
            .iter()
            .filter(|l| l.1 == module)
            .map(|l| l.0)
            .collect();
        violations.push(Violation {
            file: files.first().unwrap_or(&"src/lib.rs").to_string(),
            line: 0,
            message: format!(
                "[no layer] module `{module}` has no layer in the table \
                 (files: {}; imports: {}; imported by: {})",
                list_or_none(&files),
                list_or_none(&imports),
                list_or_none(&imported_by),
            ),
        });
    }
    violations
}

/// Every (importing, imported) pair of distinct top-level modules.
fn module_links(krate: &Crate) -> BTreeSet<(&str, &str)> {
    let mut links = BTreeSet::new();
    for file in &krate.files {
        for path in &file.paths {
            let from = path.source_top();
            if let Ok(Some(to)) = resolve(krate, &path.target) {
                if from != to {
                    links.insert((from, to));
                }
            }
        }
    }
    links
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

// ---------------------------------------------------------------------------
// Rule 2: long files say why.
// ---------------------------------------------------------------------------

/// Non-blank lines that are not comments or test code.
fn lines_of_code(code: &str) -> usize {
    code.lines().filter(|line| !line.trim().is_empty()).count()
}

/// Whether one of the first lines is `//! Why one file:` with a reason after
/// it (on that line, or on the `//!` line below).
fn states_reason(raw: &str) -> bool {
    let lines: Vec<&str> = raw.lines().take(REASON_WITHIN_LINES + 1).collect();
    lines
        .iter()
        .take(REASON_WITHIN_LINES)
        .enumerate()
        .any(|(n, line)| {
            let Some(reason) = line.trim_start().strip_prefix(REASON_MARKER) else {
                return false;
            };
            let next = lines
                .get(n + 1)
                .and_then(|l| l.trim_start().strip_prefix("//!"));
            !reason.trim().is_empty() || next.is_some_and(|l| !l.trim().is_empty())
        })
}

fn long_file_violations(krate: &Crate) -> Vec<Violation> {
    krate
        .files
        .iter()
        .filter_map(|file| {
            let count = lines_of_code(&file.code);
            (count > MAX_LINES_OF_CODE && !states_reason(&file.raw)).then(|| Violation {
                file: file.display.clone(),
                line: 0,
                message: format!(
                    "[long file] {count} lines of code (limit {MAX_LINES_OF_CODE}) and no \
                     `{REASON_MARKER} <reason>` line in its first {REASON_WITHIN_LINES} lines"
                ),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------

/// Every violation, one a line, sorted by file and line.
fn failure_message(kind: &str, violations: &[Violation]) -> String {
    let mut sorted: Vec<_> = violations.iter().collect();
    sorted.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let lines: Vec<String> = sorted.iter().map(|v| format!("  {v}")).collect();
    format!(
        "{} {kind} violation(s):\n{}\n",
        violations.len(),
        lines.join("\n")
    )
}

/// Files scanned, paths checked, and files / lines of code / paths per layer.
fn summary(krate: &Crate, report: &ImportReport) -> String {
    let mut lines = vec![format!(
        "architecture: {} files scanned ({} test-only files skipped), {} paths checked, \
         {} unchecked (an end has no layer), {} violations",
        krate.files.len(),
        krate.test_only.len(),
        report.paths,
        report.unchecked,
        report.violations.len()
    )];
    let layer_names = LAYERS.iter().map(|l| l.name).chain([NO_LAYER]);
    lines.extend(layer_names.map(|name| layer_line(krate, name)));
    let absent: Vec<&str> = LAYERS
        .iter()
        .flat_map(|l| l.modules.iter().copied())
        .filter(|m| *m != ROOT && !krate.top_modules.contains(*m))
        .collect();
    lines.push(format!(
        "  in the table, not in src/ (yet): {}",
        list_or_none(&absent)
    ));
    lines.join("\n")
}

/// How [`summary`] names files whose module has no layer.
const NO_LAYER: &str = "(no layer)";

/// One layer's files, lines of code and paths, for [`summary`].
fn layer_line(krate: &Crate, name: &str) -> String {
    let files: Vec<&ScannedFile> = krate
        .files
        .iter()
        .filter(|f| layer_of(f.top()).map_or(NO_LAYER, |l| l.name) == name)
        .collect();
    let modules: Vec<&str> = files
        .iter()
        .map(|f| f.top())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let loc: usize = files.iter().map(|f| lines_of_code(&f.code)).sum();
    let paths: usize = files.iter().map(|f| f.paths.len()).sum();
    format!(
        "  {name:<10} {:>3} files {loc:>6} lines of code {paths:>4} paths  [{}]",
        files.len(),
        modules.join(", ")
    )
}

/// Lines of code of every file over the limit, with or without a reason.
fn length_summary(krate: &Crate) -> String {
    let mut lines = vec![format!("files over {MAX_LINES_OF_CODE} lines of code:")];
    for file in &krate.files {
        let count = lines_of_code(&file.code);
        if count > MAX_LINES_OF_CODE {
            let status = if states_reason(&file.raw) {
                "says why"
            } else {
                "no reason"
            };
            lines.push(format!("  {:<32} {count:>5}  {status}", file.display));
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// Tests of the scanner itself.
// ---------------------------------------------------------------------------

/// Scans a made-up crate: `(path relative to src/, text)` pairs.
fn scan_sources(files: &[(&str, &str)]) -> Crate {
    let sources = files
        .iter()
        .map(|(rel, text)| SourceFile {
            rel: rel.to_string(),
            text: text.to_string(),
        })
        .collect();
    scan_crate(sources)
}

/// The paths found in `file` of a made-up crate, as `(text, target)`.
fn paths_in(krate: &Crate, file: &str) -> Vec<(String, Target)> {
    let file = krate
        .files
        .iter()
        .find(|f| f.display == format!("src/{file}"))
        .unwrap_or_else(|| panic!("{file} was not scanned"));
    file.paths
        .iter()
        .map(|p| (p.text.clone(), p.target.clone()))
        .collect()
}

fn module(name: &str) -> Target {
    Target::Module(name.to_string())
}

fn root_name(name: &str) -> Target {
    Target::RootName(name.to_string())
}

#[test]
fn parser_maps_files_to_modules() {
    assert_eq!(module_path("lib.rs"), Vec::<String>::new());
    assert_eq!(module_path("foo.rs"), ["foo"]);
    assert_eq!(module_path("foo/mod.rs"), ["foo"]);
    assert_eq!(module_path("foo/bar.rs"), ["foo", "bar"]);
    assert_eq!(module_path("foo/bar/mod.rs"), ["foo", "bar"]);
    assert_eq!(module_path("foo/bar/baz.rs"), ["foo", "bar", "baz"]);
}

#[test]
fn parser_reads_grouped_and_inline_paths() {
    let krate = scan_sources(&[(
        "x.rs",
        "use crate::{a::B, c::{D, E}};\n\
         use crate::{\n    f,\n    g::*,\n};\n\
         fn h(v: crate::x::y::Z) -> Vec<crate::q::R<u8>> { crate::m::n!(); todo!() }\n",
    )]);
    let paths = paths_in(&krate, "x.rs");
    let expected = [
        ("crate::a::B", root_name("a")),
        ("crate::c::{..}", root_name("c")),
        ("crate::f", root_name("f")),
        ("crate::g::*", root_name("g")),
        ("crate::x::y::Z", root_name("x")),
        ("crate::q::R", root_name("q")),
        ("crate::m::n", root_name("m")),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(t, m)| (t.to_string(), m.clone()))
        .collect();
    assert_eq!(paths, expected);
    let lines: Vec<usize> = krate.files[0].paths.iter().map(|p| p.line).collect();
    assert_eq!(lines, [1, 1, 3, 4, 6, 6, 6]);
}

#[test]
fn parser_resolves_super_against_the_module() {
    let deep = "use super::X;\nuse super::super::Y;\n\
                use super::super::super::Z;\nuse super::super::super::super::W;\n";
    let krate = scan_sources(&[
        ("a/b/c.rs", deep),
        ("a/mod.rs", "use super::Foo;\nuse super::{Bar, baz::Q};\n"),
        ("a/b/mod.rs", "use super::Foo;\nuse super::super::Foo;\n"),
        (
            "top.rs",
            "mod inner {\n    use super::Foo;\n    use super::super::Bar;\n}\nuse super::Baz;\n",
        ),
    ]);
    let above = Target::Unplaceable("`super::` climbs above the crate root");
    let targets = |file: &str| {
        paths_in(&krate, file)
            .into_iter()
            .map(|p| p.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        targets("a/b/c.rs"),
        [module("a"), module("a"), root_name("Z"), above.clone()]
    );
    assert_eq!(
        targets("a/mod.rs"),
        [root_name("Foo"), root_name("Bar"), root_name("baz")]
    );
    assert_eq!(targets("a/b/mod.rs"), [module("a"), root_name("Foo")]);
    assert_eq!(
        targets("top.rs"),
        [module("top"), root_name("Bar"), root_name("Baz")]
    );
}

#[test]
fn parser_ignores_comments_and_literals() {
    let source = r###"
// use crate::a;
/// [`crate::b`]
//! crate::c
/* crate::d /* nested crate::e */ crate::f */
fn g<'a>(x: &'a str) -> &'static str {
    let _ = "crate::h \" crate::i";
    let _ = r"crate::j";
    let _ = r#"crate::k "quoted" crate::l"#;
    let _ = br##"crate::m "# crate::n"##;
    let _ = b"crate::o";
    let _ = ('"', '\'', '{', b'"');
    let _ = crate::kept::A;
    "}"
}
use crate::kept_too::B;
"###;
    let krate = scan_sources(&[("x.rs", source)]);
    let texts: Vec<String> = paths_in(&krate, "x.rs").into_iter().map(|p| p.0).collect();
    assert_eq!(texts, ["crate::kept::A", "crate::kept_too::B"]);
    assert_eq!(krate.files[0].paths[1].line, 16);
}

#[test]
fn parser_masks_without_moving_lines() {
    let source = "a /* x\n y */ b \"s\nt\" 'c' '\\n' r#\"u\"#\n// z\n";
    let masked = mask_comments_and_literals(source);
    assert_eq!(masked, "a     \n      b \"_\n_\" '_' '__' r#\"_\"#\n    \n");
}

#[test]
fn parser_skips_test_only_code() {
    let source = r#"
use crate::kept::A;
#[cfg(test)]
mod tests {
    use crate::hidden::B;
    fn f() { let _ = "}"; crate::hidden::C; }
}
#[cfg(test)]
fn helper<T, U>() where T: Clone, U: Copy { crate::hidden::D; }
#[cfg(all(test, unix))]
use crate::hidden::{E, F};
#[cfg(any(test, feature = "testing"))]
use crate::testing_kept::G;
#[cfg(not(test))]
use crate::not_test_kept::H;
struct S {
    #[cfg(test)]
    field: crate::hidden::I,
    other: crate::kept_field::J,
}
#[cfg(test)]
const X: [u8; 2] = [crate::hidden::K; 2];
use crate::kept_last::L;
"#;
    let krate = scan_sources(&[("x.rs", source)]);
    let texts: Vec<String> = paths_in(&krate, "x.rs").into_iter().map(|p| p.0).collect();
    let expected = [
        "crate::kept::A",
        "crate::testing_kept::G",
        "crate::not_test_kept::H",
        "crate::kept_field::J",
        "crate::kept_last::L",
    ];
    assert_eq!(texts, expected);
}

#[test]
fn parser_skips_files_of_test_only_modules() {
    let krate = scan_sources(&[
        ("lib.rs", "mod x;\nmod y;\n#[cfg(test)]\nmod db_tests;\n"),
        ("db_tests.rs", "use crate::anything::A;\n"),
        ("x/mod.rs", "mod other;\n#[cfg(test)] mod tests;\n"),
        ("x/tests.rs", "use crate::anything::B;\n"),
        ("x/tests/deeper.rs", "use crate::anything::C;\n"),
        ("x/other.rs", "use crate::y::D;\n"),
        ("y.rs", "#![cfg(test)]\nuse crate::anything::E;\n"),
    ]);
    assert_eq!(
        krate.test_only,
        [
            "src/db_tests.rs",
            "src/x/tests.rs",
            "src/x/tests/deeper.rs",
            "src/y.rs"
        ]
    );
    let scanned: Vec<&str> = krate.files.iter().map(|f| f.display.as_str()).collect();
    assert_eq!(scanned, ["src/lib.rs", "src/x/mod.rs", "src/x/other.rs"]);
    // `y` is still a module: lib.rs declares it.
    assert!(krate.top_modules.contains("y"));
    assert!(!krate.top_modules.contains("db_tests"));
}

#[test]
fn parser_resolves_root_names_through_lib_rs() {
    let lib = "mod error;\nmod db;\nmod vlog;\n\
               pub use error::{Error, Result};\n\
               pub use db::sub::Db as Handle;\n\
               pub use self::db::{inner::{Deep, Other as Renamed}, self};\n\
               pub use std::sync::Arc;\n\
               pub use db::Gone as _;\n";
    let krate = scan_sources(&[("lib.rs", lib)]);
    let names: Vec<(&str, &str)> = krate
        .root_names
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected = [
        ("Arc", "std"),
        ("Deep", "db"),
        ("Error", "error"),
        ("Handle", "db"),
        ("Renamed", "db"),
        ("Result", "error"),
        ("db", "db"),
    ];
    assert_eq!(names, expected);
    let resolved = |name: &str| resolve(&krate, &root_name(name)).map(|m| m.map(str::to_string));
    assert_eq!(resolved("Error"), Ok(Some("error".to_string())));
    assert_eq!(resolved("Handle"), Ok(Some("db".to_string())));
    assert_eq!(resolved("vlog"), Ok(Some("vlog".to_string())));
    assert_eq!(resolved("Arc"), Ok(None));
    assert!(resolved("Missing").is_err());
}

#[test]
fn rules_report_every_violation() {
    let krate = scan_sources(&[
        (
            "lib.rs",
            "mod error;\nmod lsm;\nmod vlog;\nmod gc;\npub use error::Error;\n",
        ),
        ("error.rs", "use crate::lsm::Thing;\n"),
        (
            "lsm/mod.rs",
            "use crate::vlog::Ptr;\nuse super::Error;\nuse crate::lsm::x;\nuse super::vlog::Q;\n",
        ),
        ("lsm/table.rs", "use super::super::Nope;\nuse super::Own;\n"),
        (
            "vlog.rs",
            "use crate::{Error, lsm::Y};\nuse crate::gc::Z;\n",
        ),
        ("gc.rs", "use crate::vlog::W;\n"),
    ]);
    let report = check_imports(&krate);
    let mut found: Vec<String> = report
        .violations
        .iter()
        .map(|v| {
            let rule = v.message.split(']').next().unwrap_or_default();
            format!("{}:{} {rule}]", v.file, v.line)
        })
        .collect();
    found.sort();
    let expected = [
        "src/error.rs:1 [dependency direction]",
        "src/gc.rs:0 [no layer]",
        "src/lsm/mod.rs:1 [dependency direction]",
        "src/lsm/mod.rs:4 [dependency direction]",
        "src/lsm/table.rs:1 [unresolved path]",
        "src/vlog.rs:1 [dependency direction]",
    ];
    assert_eq!(found, expected);
    assert_eq!(report.paths, 11);
    // vlog → gc and gc → vlog: gc has no layer, so those wait for it to get one.
    assert_eq!(report.unchecked, 2);
}

#[test]
fn rules_count_lines_of_code_and_find_the_reason() {
    let source = "//! Doc.\n\nfn a() {\n    // note\n    let _ = \"\n\n    x\";\n}\n\
                  /* block\n */\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
    let krate = scan_sources(&[("x.rs", source)]);
    // `fn a() {`, `let _ = "`, `x";`, `}`.
    assert_eq!(lines_of_code(&krate.files[0].code), 4);

    assert!(states_reason(
        "//! Intro.\n//! Why one file: the format is one spec.\n"
    ));
    assert!(states_reason(
        "//! Why one file:\n//! the format is one spec.\n"
    ));
    assert!(!states_reason("//! Why one file:\n\nfn f() {}\n"));
    assert!(!states_reason("// Why one file: not a doc comment\n"));
    let late = format!(
        "{}//! Why one file: too late.\n",
        "\n".repeat(REASON_WITHIN_LINES)
    );
    assert!(!states_reason(&late));
}
