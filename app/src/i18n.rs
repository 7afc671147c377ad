//! Languages: message catalogs, and dates and numbers per language.
//!
//! Every interface string is written in English in the source, wrapped in
//! [`t`] (or [`tf`] when it has `{placeholders}`); the English text is the
//! key. The Spanish, French and German catalogs (`app/locales/{es,fr,de}/`,
//! one flat JSON object per area of the app) map each key to its
//! translation. A key missing from a catalog shows in English, never as a
//! key or a blank; `app/tests/catalogs.rs` fails the build's tests when any
//! key of the source is missing from a catalog, when a translation's
//! placeholders differ from its key's, or when a view holds a bare English
//! text node.
//!
//! The page's language is chosen once per page load: the `diabase_lang`
//! cookie (set when the person picks a language at sign-up, in Settings or in
//! the footer, and at log-in from their account), else the browser's
//! `Accept-Language`, else English. The server writes it into
//! `<html lang>`, and the browser's hydration reads it back from there, so
//! both render the same text. Changing language reloads the page.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::OnceLock;

/// The name of the cookie holding the chosen language.
pub const COOKIE: &str = "diabase_lang";

/// A language the interface is complete in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Es,
    Fr,
    De,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::Es, Lang::Fr, Lang::De];

    /// The ISO 639-1 code (`en`, `es`, `fr`, `de`), as stored and in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
            Lang::De => "de",
        }
    }

    /// The language's name in itself, for the language menus.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
            Lang::Fr => "Français",
            Lang::De => "Deutsch",
        }
    }

    /// A language tag (`es`, `es-MX`, `DE_at`) to a supported language.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The best supported language of an `Accept-Language` header (by
    /// q-value, then order), or `None` when it names none of them.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in header.split(',').enumerate() {
            let mut bits = part.split(';');
            let Some(lang) = bits.next().and_then(Lang::parse) else { continue };
            let q = bits
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// The language a request is shown in: its `diabase_lang` cookie, else
    /// its `Accept-Language`, else English.
    pub fn of_request(headers: &http::HeaderMap) -> Lang {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .and_then(|(_, v)| Lang::parse(v))
            .or_else(|| {
                headers
                    .get(http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or_default()
    }

    /// The `Set-Cookie` value that remembers this language in the browser for a year.
    pub fn cookie(self, secure: bool) -> String {
        let secure = if secure { "; Secure" } else { "" };
        format!("{COOKIE}={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}", self.code())
    }

    /// `key` in this language (English when the catalog lacks it).
    pub fn tr(self, key: &'static str) -> &'static str {
        match self {
            Lang::En => key,
            other => catalog(other).get(key).map(String::as_str).unwrap_or(key),
        }
    }

    /// A finished message (a server error's text) in this language: the
    /// catalog's translation of it, or of the catalog template it was filled
    /// from (`"{file}: the file is empty"` matches `"a.csv: the file is
    /// empty"`; the values are carried over). `None` when no catalog knows it.
    pub fn tr_message(self, message: &str) -> Option<String> {
        if self == Lang::En {
            return Some(message.to_string());
        }
        let cat = catalog(self);
        if let Some(v) = cat.get(message) {
            return Some(v.clone());
        }
        // The longest matching template wins (the most literal text fixed).
        let mut best: Option<(usize, String)> = None;
        for (key, value) in cat {
            if !key.contains('{') || best.as_ref().is_some_and(|(n, _)| *n >= key.len()) {
                continue;
            }
            let numbered = number_positional(key);
            if let Some(values) = match_template(&numbered, message) {
                let args: Vec<(&str, &dyn Display)> = values.iter().map(|(n, v)| (*n, v as &dyn Display)).collect();
                best = Some((key.len(), fill(&number_positional(value), &args)));
            }
        }
        best.map(|(_, s)| s)
    }

    /// `key` in this language with its `{name}` placeholders filled in.
    pub fn trf(self, key: &'static str, args: &[(&str, &dyn Display)]) -> String {
        fill(self.tr(key), args)
    }

    /// A count with its plural form (see [`tp`]).
    pub fn trp(self, n: i64, one: &'static str, other: &'static str) -> String {
        let singular = match self {
            Lang::Fr => n == 0 || n == 1 || n == -1,
            _ => n == 1 || n == -1,
        };
        self.trf(if singular { one } else { other }, &[("n", &n)])
    }

    /// The decimal separator.
    pub fn decimal_sep(self) -> char {
        match self {
            Lang::En => '.',
            _ => ',',
        }
    }

    /// A number with `decimals` places and this language's decimal
    /// separator (`5.6` / `5,6`). Thousands are not grouped: the figures of
    /// a diabetes report are small, and an ungrouped number cannot be
    /// misread as a decimal.
    pub fn num(self, v: f64, decimals: usize) -> String {
        let s = format!("{v:.decimals$}");
        let s = if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') { s[1..].to_string() } else { s };
        match self.decimal_sep() {
            '.' => s,
            sep => s.replace('.', &sep.to_string()),
        }
    }

    /// A percentage (`65.2 %` / `65,2 %`).
    pub fn percent(self, v: f64, decimals: usize) -> String {
        format!("{}\u{a0}%", self.num(v, decimals))
    }

    fn month(self, m: u32) -> &'static str {
        let i = (m as usize).saturating_sub(1).min(11);
        match self {
            Lang::En => [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ][i],
            Lang::Es => [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ][i],
            Lang::Fr => [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ][i],
            Lang::De => [
                "Januar",
                "Februar",
                "März",
                "April",
                "Mai",
                "Juni",
                "Juli",
                "August",
                "September",
                "Oktober",
                "November",
                "Dezember",
            ][i],
        }
    }

    fn month_short(self, m: u32) -> &'static str {
        let i = (m as usize).saturating_sub(1).min(11);
        match self {
            Lang::En => ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][i],
            Lang::Es => ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"][i],
            Lang::Fr => {
                ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."][i]
            }
            Lang::De => {
                ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."][i]
            }
        }
    }

    fn weekday(self, d: NaiveDate) -> &'static str {
        let i = d.weekday().num_days_from_monday() as usize;
        match self {
            Lang::En => ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][i],
            Lang::Es => ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"][i],
            Lang::Fr => ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"][i],
            Lang::De => ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"][i],
        }
    }

    fn weekday_short(self, d: NaiveDate) -> &'static str {
        let i = d.weekday().num_days_from_monday() as usize;
        match self {
            Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][i],
            Lang::Es => ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"][i],
            Lang::Fr => ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."][i],
            Lang::De => ["Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."][i],
        }
    }

    /// A date, short (`Dec 2, 2026` · `2 dic 2026` · `2 déc. 2026` · `2. Dez. 2026`).
    pub fn date(self, d: NaiveDate) -> String {
        let (day, m, y) = (d.day(), d.month(), d.year());
        match self {
            Lang::En => format!("{} {day}, {y}", self.month_short(m)),
            Lang::Es | Lang::Fr => format!("{day} {} {y}", self.month_short(m)),
            Lang::De => format!("{day}. {} {y}", self.month_short(m)),
        }
    }

    /// A date with its weekday, short (`Wed, Dec 2, 2026` · `mié, 2 dic 2026` · `mer. 2 déc. 2026` · `Mi., 2. Dez. 2026`).
    pub fn date_weekday(self, d: NaiveDate) -> String {
        match self {
            Lang::Fr => format!("{} {}", self.weekday_short(d), self.date(d)),
            _ => format!("{}, {}", self.weekday_short(d), self.date(d)),
        }
    }

    /// A date in words (`Wednesday, December 2, 2026` · `miércoles, 2 de diciembre de 2026`
    /// · `mercredi 2 décembre 2026` · `Mittwoch, 2. Dezember 2026`).
    pub fn date_long(self, d: NaiveDate) -> String {
        let (day, m, y) = (d.day(), d.month(), d.year());
        let (wd, mon) = (self.weekday(d), self.month(m));
        match self {
            Lang::En => format!("{wd}, {mon} {day}, {y}"),
            Lang::Es => format!("{wd}, {day} de {mon} de {y}"),
            Lang::Fr => format!("{wd} {day} {mon} {y}"),
            Lang::De => format!("{wd}, {day}. {mon} {y}"),
        }
    }

    /// A date and a 24-hour time (`Dec 2, 2026, 15:24` · `2 dic 2026, 15:24`
    /// · `2 déc. 2026 à 15:24` · `2. Dez. 2026, 15:24`). Every language shows
    /// 24-hour times, as the charts do: no AM/PM to misread.
    pub fn datetime(self, dt: NaiveDateTime) -> String {
        let time = format!("{:02}:{:02}", dt.hour(), dt.minute());
        match self {
            Lang::Fr => format!("{} à {time}", self.date(dt.date())),
            _ => format!("{}, {time}", self.date(dt.date())),
        }
    }

    /// An RFC 3339 time from the API shown as [`Lang::datetime`] in UTC
    /// with the zone named, or the text itself when it does not parse.
    pub fn datetime_utc(self, rfc3339: &str) -> String {
        match chrono::DateTime::parse_from_rfc3339(rfc3339) {
            Ok(t) => format!("{} UTC", self.datetime(t.naive_utc())),
            Err(_) => rfc3339.to_string(),
        }
    }

    /// An RFC 3339 time from the API, as its date in UTC (or the text itself).
    pub fn date_of_rfc3339(self, rfc3339: &str) -> String {
        match chrono::DateTime::parse_from_rfc3339(rfc3339) {
            Ok(t) => self.date(t.naive_utc().date()),
            Err(_) => rfc3339.to_string(),
        }
    }
}

/// Fills `{name}` placeholders of `template`; an unknown one is left as written.
pub fn fill(template: &str, args: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(&v.to_string()),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Names a format string's positional holes (`{}`, `{:?}`) `{#0}`, `{#1}`…
/// in order, so a template with several can be matched and filled (its
/// translation keeps them in the same order).
fn number_positional(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut n = 0;
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(len) => {
                let name = &rest[open + 1..open + len];
                if name.is_empty() || name.starts_with(':') {
                    out.push_str(&format!("{{#{n}}}"));
                    n += 1;
                } else {
                    out.push_str(&rest[open..=open + len]);
                }
                rest = &rest[open + len + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholder values that make `template` read `text`, if any
/// (placeholders match one or more characters; the first way that fits wins).
pub fn match_template<'t, 'm>(template: &'t str, text: &'m str) -> Option<Vec<(&'t str, &'m str)>> {
    enum Part<'a> {
        Lit(&'a str),
        Hole(&'a str),
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}')?;
        if open > 0 {
            parts.push(Part::Lit(&rest[..open]));
        }
        parts.push(Part::Hole(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest));
    }
    fn go<'t, 'm>(parts: &[Part<'t>], text: &'m str, out: &mut Vec<(&'t str, &'m str)>) -> bool {
        match parts.split_first() {
            None => text.is_empty(),
            Some((Part::Lit(l), more)) => text.strip_prefix(l).is_some_and(|t| go(more, t, out)),
            Some((Part::Hole(name), more)) => {
                for (i, _) in text.char_indices().skip(1).chain(std::iter::once((text.len(), ' '))) {
                    if i == 0 {
                        continue;
                    }
                    out.push((name, &text[..i]));
                    if go(more, &text[i..], out) {
                        return true;
                    }
                    out.pop();
                }
                false
            }
        }
    }
    let mut out = Vec::new();
    go(&parts, text, &mut out).then_some(out)
}

/// The catalog files of each language, one per area of the app.
macro_rules! catalog_files {
    ($lang:literal) => {
        [
            include_str!(concat!("../locales/", $lang, "/common.json")),
            include_str!(concat!("../locales/", $lang, "/auth.json")),
            include_str!(concat!("../locales/", $lang, "/dashboard.json")),
            include_str!(concat!("../locales/", $lang, "/upload.json")),
            include_str!(concat!("../locales/", $lang, "/reports.json")),
            include_str!(concat!("../locales/", $lang, "/sharing.json")),
            include_str!(concat!("../locales/", $lang, "/settings.json")),
            include_str!(concat!("../locales/", $lang, "/clinic.json")),
            include_str!(concat!("../locales/", $lang, "/security.json")),
            include_str!(concat!("../locales/", $lang, "/pdf.json")),
            include_str!(concat!("../locales/", $lang, "/errors.json")),
        ]
    };
}

/// The raw catalog files of a language (for the catalog tests).
pub fn catalog_sources(lang: Lang) -> &'static [&'static str] {
    static ES: [&str; 11] = catalog_files!("es");
    static FR: [&str; 11] = catalog_files!("fr");
    static DE: [&str; 11] = catalog_files!("de");
    match lang {
        Lang::En => &[],
        Lang::Es => &ES,
        Lang::Fr => &FR,
        Lang::De => &DE,
    }
}

fn catalog(lang: Lang) -> &'static HashMap<String, String> {
    static CATALOGS: [OnceLock<HashMap<String, String>>; 4] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Lang::ALL.iter().position(|l| *l == lang).unwrap_or(0);
    CATALOGS[i].get_or_init(|| {
        let mut map = HashMap::new();
        for src in catalog_sources(lang) {
            // A malformed file is caught by the catalog tests; at run time it
            // only means English for that area.
            if let Ok(part) = serde_json::from_str::<HashMap<String, String>>(src) {
                map.extend(part);
            }
        }
        map
    })
}

#[cfg(not(feature = "ssr"))]
thread_local! {
    static PAGE_LANG: std::cell::Cell<Lang> = const { std::cell::Cell::new(Lang::En) };
}

/// Sets the page's language: on the server into the render's context, in
/// the browser for the page's lifetime. Called once, by `App`.
pub fn provide(lang: Lang) {
    #[cfg(not(feature = "ssr"))]
    PAGE_LANG.with(|l| l.set(lang));
    leptos::prelude::provide_context(lang);
}

/// The language the page is being shown in.
pub fn lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<Lang>().unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        PAGE_LANG.with(|l| l.get())
    }
}

/// The language this page load was rendered in: from the request on the
/// server, from `<html lang>` in the browser.
pub fn detect() -> Lang {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<http::request::Parts>().map(|p| Lang::of_request(&p.headers)).unwrap_or_default()
    }
    #[cfg(all(not(feature = "ssr"), feature = "hydrate"))]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|e| e.get_attribute("lang"))
            .and_then(|l| Lang::parse(&l))
            .unwrap_or_default()
    }
    #[cfg(all(not(feature = "ssr"), not(feature = "hydrate")))]
    {
        Lang::En
    }
}

/// An interface string in the page's language.
pub fn t(key: &'static str) -> &'static str {
    lang().tr(key)
}

/// An interface string with `{name}` placeholders, in the page's language.
pub fn tf(key: &'static str, args: &[(&str, &dyn Display)]) -> String {
    lang().trf(key, args)
}

/// A count with its plural form, in the page's language: `one` and `other`
/// are English keys with a `{n}` placeholder; French uses the singular for
/// 0 and 1, the other languages for 1 only.
pub fn tp(n: i64, one: &'static str, other: &'static str) -> String {
    lang().trp(n, one, other)
}

/// A number in the page's language (see [`Lang::num`]).
pub fn num(v: f64, decimals: usize) -> String {
    lang().num(v, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::from_accept_language("es-MX,es;q=0.9,en;q=0.8"), Some(Lang::Es));
        assert_eq!(Lang::from_accept_language("ja, de;q=0.5, fr;q=0.7"), Some(Lang::Fr));
        assert_eq!(Lang::from_accept_language("ja, zh;q=0.5"), None);
        assert_eq!(Lang::from_accept_language("de;q=0, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn the_cookie_wins_over_the_browser() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::ACCEPT_LANGUAGE, "fr-FR,fr;q=0.9".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::Fr);
        h.insert(http::header::COOKIE, "a=b; diabase_lang=de".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::De);
        assert_eq!(Lang::of_request(&http::HeaderMap::new()), Lang::En);
    }

    #[test]
    fn dates_per_language() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(Lang::En.date(d), "Dec 2, 2026");
        assert_eq!(Lang::Es.date(d), "2 dic 2026");
        assert_eq!(Lang::Fr.date(d), "2 déc. 2026");
        assert_eq!(Lang::De.date(d), "2. Dez. 2026");
        assert_eq!(Lang::En.date_long(d), "Wednesday, December 2, 2026");
        assert_eq!(Lang::Es.date_long(d), "miércoles, 2 de diciembre de 2026");
        assert_eq!(Lang::Fr.date_long(d), "mercredi 2 décembre 2026");
        assert_eq!(Lang::De.date_long(d), "Mittwoch, 2. Dezember 2026");
        assert_eq!(Lang::Es.datetime_utc("2026-12-02T15:04:00Z"), "2 dic 2026, 15:04 UTC");
        assert_eq!(Lang::Fr.date_weekday(d), "mer. 2 déc. 2026");
    }

    #[test]
    fn numbers_per_language() {
        assert_eq!(Lang::En.num(5.56, 1), "5.6");
        assert_eq!(Lang::De.num(5.56, 1), "5,6");
        assert_eq!(Lang::Fr.num(-0.01, 1), "0,0");
        assert_eq!(Lang::Es.percent(65.24, 1), "65,2\u{a0}%");
        assert_eq!(Lang::En.num(120.0, 0), "120");
    }

    #[test]
    fn placeholders_fill() {
        assert_eq!(fill("{n} of {total} days", &[("n", &3), ("total", &14)]), "3 of 14 days");
        assert_eq!(fill("{n} {unknown} {", &[("n", &1)]), "1 {unknown} {");
    }

    #[test]
    fn templates_match_finished_messages() {
        assert_eq!(
            match_template("{file}: the file is empty", "a: b.csv: the file is empty"),
            Some(vec![("file", "a: b.csv")])
        );
        assert_eq!(
            match_template("Use at least {n} characters.", "Use at least 10 characters."),
            Some(vec![("n", "10")])
        );
        assert_eq!(match_template("{a} and {b}", "x and y and z"), Some(vec![("a", "x"), ("b", "y and z")]));
        assert_eq!(match_template("Use at least {n} characters.", "Use at least  characters."), None);
        assert_eq!(match_template("fixed", "fixed"), Some(vec![]));
        assert_eq!(match_template("fixed", "fixed!"), None);
        assert_eq!(number_positional("{} is not a time for {:?} ({x})."), "{#0} is not a time for {#1} ({x}).");
    }

    #[test]
    fn finished_messages_translate_through_their_template() {
        let de = Lang::De.tr_message("export.csv: the file is empty").expect("a template matches");
        assert!(de.starts_with("export.csv") && de != "export.csv: the file is empty", "{de}");
        let fr = Lang::Fr.tr_message("\"soon\" is not a time for created_at.").expect("positional holes");
        assert!(fr.starts_with("\"soon\" ") && fr.ends_with(" created_at."), "{fr}");
        assert_eq!(Lang::Es.tr_message("Not found."), Some(Lang::Es.tr("Not found.").to_string()));
        assert_eq!(Lang::Es.tr_message("no catalog has this"), None);
        assert_eq!(Lang::En.tr_message("anything").as_deref(), Some("anything"));
    }

    #[test]
    fn english_is_the_key_and_missing_keys_fall_back() {
        assert_eq!(Lang::En.tr("Log in"), "Log in");
        assert_eq!(Lang::De.tr("no such key in any catalog"), "no such key in any catalog");
    }
}
