//! The message catalogs are complete: every interface string of the source
//! has a Spanish, French and German translation with the same placeholders,
//! no catalog holds a key the source no longer uses, and no view shows a
//! bare English text node that bypasses the catalogs.

use app::i18n::{Lang, catalog_sources};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The Rust files whose strings are shown to people: the app (pages,
/// components, server functions' messages) and the report PDF.
fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root().join("app/src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read app/src") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("i18n.rs") {
                files.push(p);
            }
        }
    }
    files.push(root().join("server/src/pdf.rs"));
    files.sort();
    files
}

/// A token of Rust source, as far as these checks need.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Ident(String),
    Punct(char),
}

/// Splits Rust source into identifiers, string literals (unescaped) and
/// punctuation, skipping comments, char literals and lifetimes. Each token
/// has its line.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
        } else if ch == 'r'
            && (c.get(i + 1) == Some(&'"')
                || (c.get(i + 1) == Some(&'#') && c.get(i + 2) == Some(&'"'))
                || (c.get(i + 1) == Some(&'#') && c.get(i + 2) == Some(&'#')))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            let start_line = line;
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            let mut s = String::new();
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if c[j] == '\n' {
                    line += 1;
                }
                s.push(c[j]);
                j += 1;
            }
            out.push((Tok::Str(s), start_line));
            i = j;
        } else if ch == '"' {
            let start_line = line;
            let mut j = i + 1;
            let mut s = String::new();
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                    match c.get(j) {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('0') => s.push('\0'),
                        Some('u') => {
                            let close = (j..c.len()).find(|&k| c[k] == '}').unwrap_or(j);
                            let hex: String = c[j + 2..close].iter().collect();
                            if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                s.push(ch);
                            }
                            j = close;
                        }
                        Some('\n') => {
                            line += 1;
                            while c.get(j + 1).is_some_and(|x| x.is_whitespace()) {
                                if c[j + 1] == '\n' {
                                    line += 1;
                                }
                                j += 1;
                            }
                        }
                        Some(other) => s.push(*other),
                        None => {}
                    }
                } else {
                    if c[j] == '\n' {
                        line += 1;
                    }
                    s.push(c[j]);
                }
                j += 1;
            }
            out.push((Tok::Str(s), start_line));
            i = j + 1;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{a0}') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push((Tok::Ident(c[i..j].iter().collect()), line));
            i = j;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The catalog keys a file uses: the literal first argument of `t(…)`,
/// `tf(…)`, `.tr(…)` and `.trf(…)`, and the two literals of `tp(n, …, …)`
/// and `.trp(n, …, …)`. A call whose key is not a literal is an error: the
/// catalogs could not be checked for it.
fn keys_of(file: &Path, toks: &[(Tok, usize)], keys: &mut BTreeMap<String, String>, errors: &mut Vec<String>) {
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    for i in 0..toks.len() {
        let Tok::Ident(id) = &toks[i].0 else { continue };
        // Server errors shown to people: the literal message of
        // `ServiceError::bad(field, "…")`, `Conflict("…")`, `Unprocessable("…")`, `Unavailable("…")`.
        let after_path = i >= 2 && toks[i - 1].0 == Tok::Punct(':') && toks[i - 2].0 == Tok::Punct(':');
        let error_ctor = matches!(id.as_str(), "bad" | "Conflict" | "Unprocessable" | "Unavailable");
        if error_ctor && after_path && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Punct('(')) {
            let arg = match id.as_str() {
                "bad" if matches!(toks.get(i + 3).map(|t| &t.0), Some(Tok::Punct(','))) => i + 4,
                _ => i + 2,
            };
            // A literal, or the format string of `format!("…", …)` (a template).
            let is = |j: usize, t: Tok| toks.get(j).map(|x| &x.0) == Some(&t);
            let literal =
                if is(arg, Tok::Ident("format".into())) && is(arg + 1, Tok::Punct('!')) && is(arg + 2, Tok::Punct('('))
                {
                    toks.get(arg + 3)
                } else {
                    toks.get(arg)
                };
            if let Some((Tok::Str(s), line)) = literal {
                keys.entry(s.clone()).or_insert_with(|| format!("{name}:{line}"));
            }
            continue;
        }
        if !matches!(id.as_str(), "t" | "tf" | "tr" | "trf" | "tp" | "trp")
            || toks.get(i + 1).map(|t| &t.0) != Some(&Tok::Punct('('))
        {
            continue;
        }
        if i > 0 && toks[i - 1].0 == Tok::Ident("fn".into()) {
            continue;
        }
        let method = i > 0 && toks[i - 1].0 == Tok::Punct('.');
        if matches!(id.as_str(), "tr" | "trf" | "trp") != method {
            continue;
        }
        let line = toks[i].1;
        let mut want = |j: usize| match toks.get(j).map(|t| &t.0) {
            Some(Tok::Str(s)) => {
                keys.entry(s.clone()).or_insert_with(|| format!("{name}:{line}"));
            }
            // A wrapper (`fn t(key: &'static str)`) passing its own key on.
            Some(Tok::Ident(k)) if k == "key" => {}
            _ => {
                errors.push(format!("{name}:{line}: {id}(…) needs a string literal key so the catalogs can be checked"))
            }
        };
        if matches!(id.as_str(), "tp" | "trp") {
            // Skip the count: to the first comma at depth 0.
            let mut depth = 0;
            let mut j = i + 2;
            while j < toks.len() {
                match toks[j].0 {
                    Tok::Punct('(' | '[' | '{') => depth += 1,
                    Tok::Punct(')' | ']' | '}') => depth -= 1,
                    Tok::Punct(',') if depth == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            want(j + 1);
            want(j + 3);
        } else {
            want(i + 2);
        }
    }
}

/// Literals that read as words but are not translated: names and units.
const UNTRANSLATED: &[&str] =
    &["Diabase", "mg/dL", "mmol/L", "Nightscout", "CareLink", "Dexcom", "LibreView", "xDrip+", "FHIR"];

/// Bare text nodes of views: a literal with a word in it right after a tag's
/// `>` or an expression's `}`, or right before a `<`.
fn bare_text(file: &Path, toks: &[(Tok, usize)], errors: &mut Vec<String>) {
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    for i in 0..toks.len() {
        let Tok::Str(s) = &toks[i].0 else { continue };
        let wordy = s.as_bytes().windows(2).any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_lowercase());
        if !wordy || UNTRANSLATED.contains(&s.trim()) {
            continue;
        }
        let prev = i.checked_sub(1).map(|p| &toks[p].0);
        let prev2 = i.checked_sub(2).map(|p| &toks[p].0);
        let after_tag = prev == Some(&Tok::Punct('>')) && !matches!(prev2, Some(Tok::Punct('=' | '-')));
        let after_expr = prev == Some(&Tok::Punct('}'));
        let before_tag = toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Punct('<'));
        // A match arm's pattern (`} "x" => …`, `"x" | "y"`) is not a text node.
        let next = toks.get(i + 1).map(|t| &t.0);
        let pattern = next == Some(&Tok::Punct('|'))
            || (next == Some(&Tok::Punct('=')) && toks.get(i + 2).map(|t| &t.0) == Some(&Tok::Punct('>')));
        if (after_tag || after_expr || before_tag) && !pattern {
            errors.push(format!("{name}:{}: text node {s:?} is not from the catalogs: wrap it in t(…)", toks[i].1));
        }
    }
}

fn placeholders(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = s;
    while let Some(o) = rest.find('{') {
        match rest[o + 1..].find('}') {
            Some(c) => {
                out.insert(rest[o + 1..o + 1 + c].to_string());
                rest = &rest[o + 2 + c..];
            }
            None => break,
        }
    }
    out
}

#[test]
fn every_interface_string_is_translated_in_every_language() {
    let mut keys = BTreeMap::new();
    let mut errors = Vec::new();
    for f in sources() {
        let src = std::fs::read_to_string(&f).expect("read source");
        let toks = lex(&src);
        keys_of(&f, &toks, &mut keys, &mut errors);
        // Views live in the pages, the shared components and the app shell.
        let rel = f.strip_prefix(root()).unwrap_or(&f).to_string_lossy().replace('\\', "/");
        if rel.starts_with("app/src/pages/") || rel == "app/src/components.rs" || rel == "app/src/lib.rs" {
            bare_text(&f, &toks, &mut errors);
        }
    }
    assert!(keys.len() > 300, "only {} catalog keys found in the source: is the scanner broken?", keys.len());
    for lang in [Lang::Es, Lang::Fr, Lang::De] {
        let mut catalog: BTreeMap<String, String> = BTreeMap::new();
        for (n, src) in catalog_sources(lang).iter().enumerate() {
            let part: BTreeMap<String, String> = serde_json::from_str(src).unwrap_or_else(|e| {
                panic!("app/locales/{}/ file #{n} is not a flat JSON object of strings: {e}", lang.code())
            });
            for (k, v) in part {
                if let Some(old) = catalog.get(&k)
                    && *old != v
                {
                    errors.push(format!("{}: {k:?} is translated twice, differently: {old:?} and {v:?}", lang.code()));
                }
                catalog.insert(k, v);
            }
        }
        for (k, at) in &keys {
            match catalog.get(k) {
                None => errors.push(format!("{}: no translation of {k:?} (used at {at})", lang.code())),
                Some(v) if v.trim().is_empty() => errors.push(format!("{}: empty translation of {k:?}", lang.code())),
                Some(v) if placeholders(v) != placeholders(k) => errors.push(format!(
                    "{}: the translation of {k:?} has placeholders {:?}, the key has {:?}",
                    lang.code(),
                    placeholders(v),
                    placeholders(k)
                )),
                _ => {}
            }
        }
        for k in catalog.keys() {
            if !keys.contains_key(k) {
                errors.push(format!("{}: {k:?} is in the catalog but no longer in the source", lang.code()));
            }
        }
    }
    assert!(errors.is_empty(), "{} catalog problems:\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn the_scanner_finds_keys_and_bare_text() {
    let src = r##"
        fn f() { let a = crate::i18n::t("Log in"); let e = ServiceError::bad("f", "Bad value."); let b = lang.trf("{n} days", &[("n", &n)]); let c = tp(count(x, y), "{n} reading", "{n} readings"); }
        view! { <h1>"Bare title"</h1> <p>{t("Fine")}</p> <span>{x}" left over"</span> }
        let ok = match k { Kind::A => "not a node", _ => "mg/dL" };
        match s { "a" => {} "skip me" => {} "or me" | "x" => {} }
        let c = '"'; let l: &'static str = "no"; // t("commented")
    "##;
    let toks = lex(src);
    let (mut keys, mut errors) = (BTreeMap::new(), Vec::new());
    keys_of(Path::new("x.rs"), &toks, &mut keys, &mut errors);
    assert_eq!(
        keys.keys().cloned().collect::<Vec<_>>(),
        ["Bad value.", "Fine", "Log in", "{n} days", "{n} reading", "{n} readings"]
    );
    assert!(errors.is_empty(), "{errors:?}");
    bare_text(Path::new("x.rs"), &toks, &mut errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("Bare title") && errors[1].contains("left over"));
}
