//! The report PDF: an overview page (time in ranges, key figures, the AGP,
//! insulin and carbs) and one page per day (glucose, basal, boluses, carbs,
//! fingersticks, alarms and the day's events), A4 landscape.
//!
//! Written with `pdf-writer`; charts are vector paths; content streams are
//! deflate-compressed; all text is selectable and searchable.
//!
//! Fonts: a run of text that WinAnsi can hold (Latin-1 and a few more) uses
//! the standard Helvetica fonts, which every PDF reader has, so a typical
//! report embeds no font at all. A run with any other character (a name such
//! as "Łukasz", "Ελένη" or "Жанна", a "≥") uses DejaVu Sans, embedded as a
//! subset of just the glyphs the report uses (a CID font, Identity-H, with a
//! ToUnicode map so copying and searching give the original text back).
//! Characters DejaVu Sans lacks (CJK, for instance) print as `?`; scripts
//! that need shaping (Arabic, Indic) print unshaped.

use app::api_reports::OverviewData;
use app::service::report::ReportBundle;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use std::cell::RefCell;
use therapy::GlucoseUnit;
use therapy::report_data::{BasalKind, DayView};

use app::i18n::Lang;

thread_local! {
    /// The language of the report being drawn on this thread (set by
    /// [`render_report_pdf_in`] for the length of one render).
    static PDF_LANG: std::cell::Cell<Lang> = const { std::cell::Cell::new(Lang::En) };
}

fn lang() -> Lang {
    PDF_LANG.with(|l| l.get())
}

/// A label of the report in its language (the app's catalogs, area `pdf`).
fn t(key: &'static str) -> &'static str {
    lang().tr(key)
}

/// A label with `{placeholders}` in the report's language.
fn tf(key: &'static str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    lang().trf(key, args)
}

/// A glucose value in the unit, with the language's decimal separator.
fn gv(unit: GlucoseUnit, mg_dl: f64) -> String {
    let s = unit.format(mg_dl);
    match lang().decimal_sep() {
        '.' => s,
        sep => s.replace('.', &sep.to_string()),
    }
}

/// A `YYYY-MM-DD` day in the language's short form.
fn day_str(iso: &str) -> String {
    match chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d") {
        Ok(d) => lang().date(d),
        Err(_) => iso.to_string(),
    }
}

const W: f32 = 842.0;
const H: f32 = 595.0;
const M: f32 = 36.0;

type Rgb = (f32, f32, f32);

fn hex(c: u32) -> Rgb {
    (((c >> 16) & 0xff) as f32 / 255.0, ((c >> 8) & 0xff) as f32 / 255.0, (c & 0xff) as f32 / 255.0)
}

const TEXT: u32 = 0x1f2933;
const MUTED: u32 = 0x52606d;
const GRID: u32 = 0xd9dee4;
const TEAL: u32 = 0x0f766e;
const VERY_HIGH: u32 = 0xe4572e;
const HIGH: u32 = 0xf4a259;
const IN_RANGE: u32 = 0x2a9d8f;
const LOW: u32 = 0xe63946;
const VERY_LOW: u32 = 0x9b1d20;
const BOLUS: u32 = 0x2563eb;
const CARBS: u32 = 0xd97706;
const BASAL: u32 = 0x7c3aed;
const TEMP: u32 = 0xc026d3;
const BG: u32 = 0xb42318;

/// Helvetica and Helvetica-Bold advance widths (1/1000 em) of ASCII 32–126.
const HELV: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556,
    556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334,
    260, 334, 584,
];
const HELV_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611,
    556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389,
    280, 389, 584,
];

/// One character in WinAnsiEncoding, if it has a code there.
fn win_ansi_char(c: char) -> Option<u8> {
    Some(match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '–' => 0x96,
        '—' => 0x97,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '…' => 0x85,
        '€' => 0x80,
        _ => return None,
    })
}

/// `s` in WinAnsiEncoding, if every character has a code there.
fn win_ansi(s: &str) -> Option<Vec<u8>> {
    s.chars().map(win_ansi_char).collect()
}

/// DejaVu Sans (regular and bold), parsed once.
struct Face {
    data: &'static [u8],
    face: ttf_parser::Face<'static>,
    question: u16,
}

static FACES: std::sync::LazyLock<[Face; 2]> = std::sync::LazyLock::new(|| {
    let load = |data: &'static [u8]| {
        let face = ttf_parser::Face::parse(data, 0).expect("the bundled DejaVu Sans parses");
        let question = face.glyph_index('?').map_or(0, |g| g.0);
        Face { data, face, question }
    };
    [load(dejavu::sans::regular()), load(dejavu::sans::bold())]
});

/// The glyphs of one embedded font that a document uses, numbered in the
/// order of first use (these numbers are both the CIDs in the content
/// streams and the glyph ids of the subset font).
#[derive(Default)]
struct Subset {
    remap: subsetter::GlyphRemapper,
    /// New glyph id → the character it shows (for ToUnicode).
    chars: std::collections::BTreeMap<u16, char>,
}

/// The document's embedded fonts: [regular, bold].
#[derive(Default)]
struct Embedded {
    subsets: [Subset; 2],
}

impl Embedded {
    /// `s` as two-byte CIDs of the embedded font, and its width at `size`.
    fn encode(&mut self, s: &str, size: f32, bold: bool) -> (Vec<u8>, f32) {
        let i = usize::from(bold);
        let face = &FACES[i];
        let sub = &mut self.subsets[i];
        let per_em = f32::from(face.face.units_per_em());
        let mut codes = Vec::with_capacity(2 * s.len());
        let mut units = 0u32;
        for c in s.chars() {
            let (old, shown) = match face.face.glyph_index(c) {
                Some(g) => (g.0, c),
                None => (face.question, '?'),
            };
            let new = sub.remap.remap(old);
            sub.chars.entry(new).or_insert(shown);
            codes.extend_from_slice(&new.to_be_bytes());
            units += u32::from(face.face.glyph_hor_advance(ttf_parser::GlyphId(old)).unwrap_or(0));
        }
        (codes, units as f32 * size / per_em)
    }

    fn used(&self, bold: bool) -> bool {
        !self.subsets[usize::from(bold)].chars.is_empty()
    }

    /// Writes the font `bold` as a Type0 font at `type0` (and the four
    /// objects after it).
    fn write(&self, pdf: &mut Pdf, bold: bool, type0: Ref) {
        let i = usize::from(bold);
        let face = &FACES[i];
        let sub = &self.subsets[i];
        let (cid, descriptor, cmap, file) = (
            Ref::new(type0.get() + 1),
            Ref::new(type0.get() + 2),
            Ref::new(type0.get() + 3),
            Ref::new(type0.get() + 4),
        );
        let name = if bold { b"DBSBBB+DejaVuSans-Bold".as_slice() } else { b"DBSAAA+DejaVuSans".as_slice() };
        let per_em = f32::from(face.face.units_per_em());
        let scale = |v: f32| v * 1000.0 / per_em;
        pdf.type0_font(type0)
            .base_font(Name(name))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap);
        let system = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
        let widths: Vec<f32> = sub
            .remap
            .remapped_gids()
            .map(|g| scale(f32::from(face.face.glyph_hor_advance(ttf_parser::GlyphId(g)).unwrap_or(0))))
            .collect();
        let mut font = pdf.cid_font(cid);
        font.subtype(CidFontType::Type2)
            .base_font(Name(name))
            .system_info(system)
            .font_descriptor(descriptor)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        font.widths().consecutive(0, widths);
        font.finish();
        let b = face.face.global_bounding_box();
        pdf.font_descriptor(descriptor)
            .name(Name(name))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                scale(f32::from(b.x_min)),
                scale(f32::from(b.y_min)),
                scale(f32::from(b.x_max)),
                scale(f32::from(b.y_max)),
            ))
            .italic_angle(0.0)
            .ascent(scale(f32::from(face.face.ascender())))
            .descent(scale(f32::from(face.face.descender())))
            .cap_height(scale(f32::from(face.face.capital_height().unwrap_or(face.face.ascender()))))
            .stem_v(if bold { 140.0 } else { 80.0 })
            .font_file2(file);
        let mut unicode = UnicodeCmap::new(
            Name(b"Diabase-UTF16"),
            SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"UCS"), supplement: 0 },
        );
        for (&g, &c) in &sub.chars {
            unicode.pair(g, c);
        }
        pdf.cmap(cmap, &unicode.finish());
        // A font that does not subset (it cannot happen with the bundled
        // DejaVu) is embedded whole rather than dropped.
        let program = subsetter::subset(face.data, 0, &sub.remap).unwrap_or_else(|_| face.data.to_vec());
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&program, 6);
        pdf.stream(file, &packed).filter(Filter::FlateDecode).pair(Name(b"Length1"), program.len() as i32);
    }
}

fn text_width(bytes: &[u8], size: f32, bold: bool) -> f32 {
    let table = if bold { &HELV_BOLD } else { &HELV };
    let units: u32 = bytes
        .iter()
        .map(|&b| match b {
            32..=126 => u32::from(table[usize::from(b - 32)]),
            0x97 => 1000,
            0x95 => 350,
            0xa0 | 0xb7 => 278,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
    Center,
}

/// One page's content stream, with drawing helpers (PDF coordinates: origin
/// bottom left; the helpers take y from the top).
struct Page<'f> {
    c: Content,
    fonts: &'f RefCell<Embedded>,
}

impl<'f> Page<'f> {
    fn new(fonts: &'f RefCell<Embedded>) -> Self {
        Page { c: Content::new(), fonts }
    }

    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f32, top: f32, size: f32, bold: bool, color: u32, align: Align, s: &str) -> f32 {
        let (font, bytes, w): (&[u8], Vec<u8>, f32) = match win_ansi(s) {
            Some(bytes) => {
                let w = text_width(&bytes, size, bold);
                (if bold { b"F2" } else { b"F1" }, bytes, w)
            }
            None => {
                let (codes, w) = self.fonts.borrow_mut().encode(s, size, bold);
                (if bold { b"F4" } else { b"F3" }, codes, w)
            }
        };
        let x = match align {
            Align::Left => x,
            Align::Right => x - w,
            Align::Center => x - w / 2.0,
        };
        let (r, g, b) = hex(color);
        self.c.begin_text();
        self.c.set_font(Name(font), size);
        self.c.set_fill_rgb(r, g, b);
        self.c.next_line(x, H - top - size * 0.8);
        self.c.show(Str(&bytes));
        self.c.end_text();
        w
    }

    fn fill_rect(&mut self, x: f32, top: f32, w: f32, h: f32, color: Rgb) {
        if w <= 0.0 || h <= 0.0 {
            return;
        }
        self.c.set_fill_rgb(color.0, color.1, color.2);
        self.c.rect(x, H - top - h, w, h);
        self.c.fill_nonzero();
    }

    fn stroke_style(&mut self, width: f32, color: u32, dash: bool) {
        let (r, g, b) = hex(color);
        self.c.set_stroke_rgb(r, g, b);
        self.c.set_line_width(width);
        if dash {
            self.c.set_dash_pattern([3.0, 2.0], 0.0);
        } else {
            self.c.set_dash_pattern([], 0.0);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32, color: u32, dash: bool) {
        self.stroke_style(width, color, dash);
        self.c.move_to(x1, H - y1);
        self.c.line_to(x2, H - y2);
        self.c.stroke();
    }

    /// Polylines (each a run of points, y from the top).
    fn polylines(&mut self, runs: &[Vec<(f32, f32)>], width: f32, color: u32) {
        self.stroke_style(width, color, false);
        for run in runs {
            let mut it = run.iter();
            let Some(&(x, y)) = it.next() else { continue };
            self.c.move_to(x, H - y);
            if run.len() == 1 {
                self.c.line_to(x + 0.8, H - y);
            }
            for &(x, y) in it {
                self.c.line_to(x, H - y);
            }
            self.c.stroke();
        }
    }

    fn polygon(&mut self, pts: &[(f32, f32)], color: Rgb) {
        let mut it = pts.iter();
        let Some(&(x, y)) = it.next() else { return };
        self.c.set_fill_rgb(color.0, color.1, color.2);
        self.c.move_to(x, H - y);
        for &(x, y) in it {
            self.c.line_to(x, H - y);
        }
        self.c.close_path();
        self.c.fill_nonzero();
    }

    fn diamond(&mut self, x: f32, y: f32, r: f32, color: u32) {
        self.polygon(&[(x, y - r), (x + r, y), (x, y + r), (x - r, y)], hex(color));
    }

    fn finish(self) -> Vec<u8> {
        self.c.finish().to_vec()
    }
}

fn light(c: u32, alpha: f32) -> Rgb {
    let (r, g, b) = hex(c);
    (1.0 - alpha * (1.0 - r), 1.0 - alpha * (1.0 - g), 1.0 - alpha * (1.0 - b))
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{} %", lang().num(x, 1))).unwrap_or_else(|| "–".into())
}

fn glu(unit: GlucoseUnit, v: Option<f64>) -> String {
    v.map(|x| format!("{} {}", gv(unit, x), unit.label())).unwrap_or_else(|| "–".into())
}

fn num(v: Option<f64>, d: usize, suffix: &str) -> String {
    v.map(|x| format!("{}{suffix}", lang().num(x, d))).unwrap_or_else(|| "–".into())
}

/// Header and footer of every page.
fn frame(p: &mut Page, b: &ReportBundle, title: &str, page_no: usize, pages: usize) {
    let m = &b.overview.meta;
    p.text(M, M - 8.0, 16.0, true, TEXT, Align::Left, &tf("Diabase report · {name}", &[("name", &m.patient_name)]));
    p.text(
        W - M,
        M - 8.0,
        11.0,
        true,
        TEXT,
        Align::Right,
        &tf("{from} to {to} ({days} days)", &[("from", &day_str(&m.from)), ("to", &day_str(&m.to)), ("days", &m.days)]),
    );
    p.text(M, M + 12.0, 9.0, false, MUTED, Align::Left, title);
    p.text(
        W - M,
        M + 12.0,
        8.0,
        false,
        MUTED,
        Align::Right,
        &tf(
            "Generated {at} · glucose in {unit} · times in {zone}",
            &[("at", &b.generated_at), ("unit", &b.unit.label()), ("zone", &m.time_zone)],
        ),
    );
    p.line(M, M + 26.0, W - M, M + 26.0, 0.6, GRID, false);
    p.text(M, H - M + 8.0, 7.5, false, MUTED, Align::Left, t("Diabase shows device data; it does not give treatment advice. Consensus definitions: Battelino et al., Diabetes Care 2019."));
    p.text(
        W - M,
        H - M + 8.0,
        7.5,
        false,
        MUTED,
        Align::Right,
        &tf("Page {n} of {total}", &[("n", &page_no), ("total", &pages)]),
    );
}

/// A labelled figure: small caps label over a bold value.
fn figure(p: &mut Page, x: f32, top: f32, label: &str, value: &str) {
    figure_sized(p, x, top, label, value, 13.0);
}

fn figure_sized(p: &mut Page, x: f32, top: f32, label: &str, value: &str, size: f32) {
    p.text(x, top, 7.5, false, MUTED, Align::Left, &label.to_uppercase());
    p.text(x, top + 10.0, size, true, TEXT, Align::Left, value);
}

fn overview_page(p: &mut Page, b: &ReportBundle) {
    let d: &OverviewData = &b.overview;
    let g = &d.glucose;
    let unit = b.unit;
    let mut top = M + 40.0;

    // Notes.
    let mut notes: Vec<String> = Vec::new();
    if g.readings == 0 {
        notes.push(t("No CGM readings in these days.").into());
    } else if !g.sufficient {
        notes.push(tf(
            "Sensor data covers {percent} of the expected readings over {days} day(s); the consensus asks for 70 % over 14 days.",
            &[("percent", &pct(g.cgm_active_percent)), ("days", &g.days)],
        ));
    }
    if b.days_capped {
        notes.push(tf(
            "Daily pages: the last {n} of the {total} days ({from} to {to}).",
            &[
                ("n", &b.days.len()),
                ("total", &d.meta.days),
                ("from", &b.days.first().map(|x| lang().date(x.date)).unwrap_or_default()),
                ("to", &day_str(&d.meta.to)),
            ],
        ));
    }
    for n in &notes {
        p.text(M, top, 9.0, true, 0x92400e, Align::Left, n);
        top += 13.0;
    }
    if !notes.is_empty() {
        top += 4.0;
    }

    // Time in ranges: a stacked bar with its legend.
    p.text(M, top, 11.0, true, TEXT, Align::Left, t("Time in ranges"));
    let (bx, by, bw, bh) = (M, top + 20.0, 34.0, 210.0);
    let ranges = [
        (t("Very high"), format!("> {}", gv(unit, 250.0)), g.very_high_percent, VERY_HIGH, "< 5 %"),
        (
            t("High"),
            format!("{}–{}", gv(unit, 181.0), gv(unit, 250.0)),
            g.high_percent,
            HIGH,
            t("< 25 % (with very high)"),
        ),
        (t("In range"), format!("{}–{}", gv(unit, 70.0), gv(unit, 180.0)), g.in_range_percent, IN_RANGE, "> 70 %"),
        (t("Low"), format!("{}–{}", gv(unit, 54.0), gv(unit, 69.0)), g.low_percent, LOW, t("< 4 % (with very low)")),
        (t("Very low"), format!("< {}", gv(unit, 54.0)), g.very_low_percent, VERY_LOW, "< 1 %"),
    ];
    p.fill_rect(bx, by, bw, bh, hex(0xeef0f3));
    let mut y = by;
    for (_, _, v, color, _) in &ranges {
        let h = (v.unwrap_or(0.0) as f32 / 100.0 * bh).max(0.0);
        p.fill_rect(bx, y, bw, h, hex(*color));
        y += h;
    }
    for (i, (name, range, v, color, target)) in ranges.iter().enumerate() {
        let ly = by + 6.0 + i as f32 * 42.0;
        p.fill_rect(bx + bw + 12.0, ly + 1.0, 8.0, 8.0, hex(*color));
        p.text(bx + bw + 26.0, ly, 10.0, true, TEXT, Align::Left, name);
        p.text(bx + bw + 190.0, ly - 1.0, 13.0, true, TEXT, Align::Right, &pct(*v));
        p.text(
            bx + bw + 26.0,
            ly + 13.0,
            8.0,
            false,
            MUTED,
            Align::Left,
            &tf("{range} {unit} · target {target}", &[("range", range), ("unit", &unit.label()), ("target", target)]),
        );
    }

    // Key figures.
    let fy = by + bh + 22.0;
    p.text(M, fy - 4.0, 11.0, true, TEXT, Align::Left, t("Key figures"));
    let figs = [
        (t("Mean glucose"), glu(unit, g.mean_mg_dl)),
        ("GMI", num(g.gmi_percent, 1, " %")),
        ("CV", pct(g.cv_percent)),
        (t("SD"), glu(unit, g.sd_mg_dl)),
        (t("Sensor active"), pct(g.cgm_active_percent)),
        (t("Readings"), g.readings.to_string()),
        ("GRI", num(g.gri, 1, "")),
        (t("Hypo episodes"), g.hypo_episode_count.to_string()),
    ];
    for (i, (label, value)) in figs.iter().enumerate() {
        let (col, row) = (i % 3, i / 3);
        figure(p, M + col as f32 * 86.0, fy + 14.0 + row as f32 * 30.0, label, value);
    }

    // The AGP.
    let (ax, ay, aw, ah) = (330.0, top + 44.0, W - M - 330.0 - 8.0, 250.0);
    p.text(ax - 30.0, ay - 42.0, 11.0, true, TEXT, Align::Left, t("Ambulatory glucose profile (AGP)"));
    p.text(
        ax - 30.0,
        ay - 29.0,
        8.0,
        false,
        MUTED,
        Align::Left,
        &tf(
            "Median, 25–75 % and 5–95 % of all days by time of day, {bin}-minute bins; target {low}–{high} {unit}.",
            &[("bin", &g.agp_bin_min), ("low", &gv(unit, 70.0)), ("high", &gv(unit, 180.0)), ("unit", &unit.label())],
        ),
    );
    let ymax_mg = g.agp.iter().map(|b| b.p95).fold(300.0f64, f64::max).min(600.0);
    let ystep = match unit {
        GlucoseUnit::MgDl => 50.0,
        GlucoseUnit::MmolL => 2.5 * therapy::units::MG_DL_PER_MMOL_L,
    };
    let ymax = (ymax_mg / ystep).ceil() * ystep;
    let y_of = |mg: f64| ay + ah - (mg / ymax) as f32 * ah;
    let x_of = |minute: f64| ax + (minute / 1440.0) as f32 * aw;
    glucose_axes(p, unit, ax, ay, aw, ah, ymax, ystep);
    for h in (0..=24).step_by(3) {
        let x = x_of(f64::from(h) * 60.0);
        p.line(x, ay + ah, x, ay + ah + 3.0, 0.5, MUTED, false);
        p.text(x, ay + ah + 6.0, 7.5, false, MUTED, Align::Center, &format!("{:02}:00", h % 24));
    }
    if !g.agp.is_empty() {
        let half = f64::from(g.agp_bin_min) / 2.0;
        let pts = |f: fn(&therapy::metrics::AgpBin) -> f64| -> Vec<(f32, f32)> {
            g.agp.iter().map(|b| (x_of(f64::from(b.minute) + half), y_of(f(b)))).collect()
        };
        for (hi, lo, color) in
            [(pts(|b| b.p95), pts(|b| b.p5), light(TEAL, 0.18)), (pts(|b| b.p75), pts(|b| b.p25), light(TEAL, 0.42))]
        {
            let mut poly = hi.clone();
            poly.extend(lo.iter().rev());
            p.polygon(&poly, color);
        }
        // Runs of consecutive bins (a missing bin breaks the median line).
        let mut runs: Vec<Vec<(f32, f32)>> = Vec::new();
        let mut prev: Option<u32> = None;
        for b in &g.agp {
            if prev.is_none_or(|p| b.minute != p + g.agp_bin_min) {
                runs.push(Vec::new());
            }
            if let Some(r) = runs.last_mut() {
                r.push((x_of(f64::from(b.minute) + half), y_of(b.p50)));
            }
            prev = Some(b.minute);
        }
        p.polylines(&runs, 1.8, TEAL);
    }
    for mg in [70.0, 180.0] {
        p.line(ax, y_of(mg), ax + aw, y_of(mg), 0.8, IN_RANGE, true);
    }

    // Insulin and carbs.
    let iy = ay + ah + 30.0;
    p.text(ax - 30.0, iy, 11.0, true, TEXT, Align::Left, t("Insulin and carbohydrate"));
    match (&d.insulin, d.pump_data) {
        (None, _) => {
            p.text(
                ax - 30.0,
                iy + 18.0,
                9.0,
                false,
                MUTED,
                Align::Left,
                t("Insulin data is not shared with this viewer."),
            );
        }
        (Some(_), false) => {
            p.text(ax - 30.0, iy + 18.0, 9.0, false, MUTED, Align::Left, t("No pump data in these days."));
        }
        (Some(s), true) if !d.basal_data => {
            let figs = [
                (t("Bolus per day"), num(s.bolus_u_per_day, 1, " U")),
                (t("Boluses per day"), num(s.boluses_per_day, 1, "")),
                (t("Carbs per day"), num(s.carbs_g_per_day, 0, " g")),
            ];
            for (i, (label, value)) in figs.iter().enumerate() {
                figure_sized(p, ax - 30.0 + i as f32 * 100.0, iy + 18.0, label, value, 11.5);
            }
            p.text(ax - 30.0, iy + 48.0, 8.0, false, MUTED, Align::Left, t("No basal data in these days (pump basal, or long-acting insulin logged as a dose), so no total daily dose."));
        }
        (Some(s), true) => {
            let figs = [
                (t("Total daily dose"), num(s.total_daily_dose_u, 1, " U")),
                (t("Basal per day"), format!("{} ({})", num(s.basal_u_per_day, 1, " U"), pct(s.basal_percent))),
                (t("Bolus per day"), format!("{} ({})", num(s.bolus_u_per_day, 1, " U"), pct(s.bolus_percent))),
                (t("Boluses per day"), num(s.boluses_per_day, 1, "")),
                (t("Carbs per day"), num(s.carbs_g_per_day, 0, " g")),
            ];
            for (i, (label, value)) in figs.iter().enumerate() {
                figure_sized(p, ax - 30.0 + i as f32 * 100.0, iy + 18.0, label, value, 11.5);
            }
        }
    }
}

/// Glucose y axis: gridlines and labels every `step` mg/dL (in the unit), over [0, ymax].
#[allow(clippy::too_many_arguments)]
fn glucose_axes(p: &mut Page, unit: GlucoseUnit, x: f32, y: f32, w: f32, h: f32, ymax: f64, step: f64) {
    p.line(x, y + h, x + w, y + h, 0.6, MUTED, false);
    p.line(x, y, x, y + h, 0.6, MUTED, false);
    let mut v = 0.0;
    while v <= ymax + 1e-6 {
        let yy = y + h - (v / ymax) as f32 * h;
        if v > 0.0 {
            p.line(x, yy, x + w, yy, 0.4, GRID, false);
        }
        p.text(x - 4.0, yy - 3.5, 7.5, false, MUTED, Align::Right, &gv(unit, v));
        v += step;
    }
    p.text(x - 4.0, y - 12.0, 7.5, false, MUTED, Align::Right, unit.label());
}

fn day_page(p: &mut Page, b: &ReportBundle, day: &DayView) {
    let unit = b.unit;
    let s = &day.stats;
    let top = M + 38.0;
    p.text(M, top, 13.0, true, TEXT, Align::Left, &lang().date_long(day.date));
    let below = s.low_percent.zip(s.very_low_percent).map(|(a, c)| a + c);
    let above = s.high_percent.zip(s.very_high_percent).map(|(a, c)| a + c);
    let figs = [
        (t("Mean"), glu(unit, s.mean_mg_dl)),
        (t("In range"), pct(s.in_range_percent)),
        (t("Below 70"), pct(below)),
        (t("Above 180"), pct(above)),
        (t("Readings"), s.readings.to_string()),
        (t("Carbs"), format!("{:.0} g", s.carbs_g)),
        (t("Bolus"), format!("{} U", lang().num(s.bolus_u, 1))),
        (t("Basal"), num(s.basal_u, 1, " U")),
        (t("Total insulin"), num(s.total_u, 1, " U")),
    ];
    for (i, (label, value)) in figs.iter().enumerate() {
        figure_sized(p, M + i as f32 * 85.0, top + 20.0, label, value, 11.5);
    }

    // Glucose panel.
    let (gx, gy, gw, gh) = (M + 34.0, top + 66.0, W - 2.0 * M - 34.0 - 30.0, 175.0);
    let day_s = f64::from(day.minutes.max(1)) * 60.0;
    let x_of = |sec: u32| gx + (f64::from(sec) / day_s) as f32 * gw;
    let ymax_mg =
        f64::from(day.cgm.iter().map(|c| c.1).chain(day.bg.iter().map(|b| b.mg_dl)).max().unwrap_or(0).max(400));
    let step = match unit {
        GlucoseUnit::MgDl => 100.0,
        GlucoseUnit::MmolL => 5.0 * therapy::units::MG_DL_PER_MMOL_L,
    };
    let ymax = (ymax_mg / step).ceil() * step;
    let y_of = |mg: f64| gy + gh - (mg / ymax) as f32 * gh;
    p.fill_rect(gx, y_of(180.0), gw, y_of(70.0) - y_of(180.0), light(IN_RANGE, 0.12));
    glucose_axes(p, unit, gx, gy, gw, gh, ymax, step);
    for mg in [70.0, 180.0] {
        p.line(gx, y_of(mg), gx + gw, y_of(mg), 0.6, IN_RANGE, true);
    }
    let mut runs: Vec<Vec<(f32, f32)>> = Vec::new();
    let mut prev: Option<u32> = None;
    for &(sec, v) in &day.cgm {
        if prev.is_none_or(|p| sec.saturating_sub(p) > 15 * 60) {
            runs.push(Vec::new());
        }
        if let Some(r) = runs.last_mut() {
            r.push((x_of(sec), y_of(f64::from(v))));
        }
        prev = Some(sec);
    }
    p.polylines(&runs, 1.3, TEAL);
    for bg in &day.bg {
        p.diamond(x_of(bg.sec), y_of(f64::from(bg.mg_dl)), 3.5, BG);
    }
    for a in &day.alarms {
        let x = x_of(a.sec);
        p.line(x, gy, x, gy + gh, 0.6, VERY_HIGH, true);
        p.polygon(&[(x - 3.0, gy - 5.0), (x + 3.0, gy - 5.0), (x, gy)], hex(VERY_HIGH));
    }

    // Insulin panel.
    let (ix, iy, iw, ih) = (gx, gy + gh + 22.0, gw, 80.0);
    let pump = !day.basal.is_empty() || !day.boluses.is_empty() || !day.carbs.is_empty();
    if b.insulin_visible && pump {
        // Boluses on the panel's full height; basal on its own scale in the lower part.
        let umax = day.boluses.iter().map(|x| x.units).fold(2.0f64, f64::max).ceil();
        let bmax = day
            .basal
            .iter()
            .map(|x| x.rate_u_h.max(x.scheduled_u_h.unwrap_or(0.0)))
            .chain(day.boluses.iter().filter_map(|b| b.extended().map(|e| e.0)))
            .fold(0.5f64, f64::max)
            * 1.25;
        let cmax = day.carbs.iter().map(|c| c.grams).fold(50.0f64, f64::max);
        let uy = |u: f64| iy + ih - (u / umax) as f32 * ih;
        let by = |u: f64| iy + ih - (u / bmax) as f32 * ih * 0.45;
        p.line(ix, iy + ih, ix + iw, iy + ih, 0.6, MUTED, false);
        p.line(ix, iy, ix, iy + ih, 0.6, MUTED, false);
        p.text(ix - 4.0, iy - 3.5, 7.5, false, BOLUS, Align::Right, &format!("{umax:.0} U"));
        p.text(ix - 4.0, iy + ih - 3.5, 7.5, false, MUTED, Align::Right, "0");
        p.text(ix + iw + 4.0, by(bmax / 1.25) - 3.5, 7.5, false, BASAL, Align::Left, &lang().num(bmax / 1.25, 2));
        p.text(ix + iw + 4.0, iy + ih - 3.5, 7.5, false, BASAL, Align::Left, "U/h");
        for piece in &day.basal {
            let (x1, x2) = (x_of(piece.start_sec), x_of(piece.end_sec));
            match piece.kind {
                BasalKind::Suspended => p.fill_rect(x1, by(bmax), x2 - x1, iy + ih - by(bmax), hex(0xd1d5db)),
                BasalKind::Temp => {
                    p.fill_rect(x1, by(piece.rate_u_h), x2 - x1, iy + ih - by(piece.rate_u_h), light(TEMP, 0.45))
                }
                BasalKind::Scheduled => {
                    p.fill_rect(x1, by(piece.rate_u_h), x2 - x1, iy + ih - by(piece.rate_u_h), light(BASAL, 0.35))
                }
            }
            if let Some(s) = piece.scheduled_u_h.filter(|_| piece.kind != BasalKind::Scheduled) {
                p.line(x1, by(s), x2, by(s), 0.6, MUTED, true);
            }
        }
        // The extended part of a square or dual bolus: its rate (U/h, basal scale) over its
        // duration, clipped at the day's end; the bar is what was given at once.
        for bo in &day.boluses {
            if let Some((rate, end)) = bo.extended() {
                let (x1, x2) = (x_of(bo.sec), x_of(end.min(day.minutes * 60)));
                p.fill_rect(x1, by(rate), x2 - x1, iy + ih - by(rate), light(BOLUS, 0.45));
            }
        }
        for bo in &day.boluses {
            let x = x_of(bo.sec);
            p.fill_rect(x - 1.5, uy(bo.now_u()), 3.0, iy + ih - uy(bo.now_u()), hex(BOLUS));
            p.text(x, uy(bo.units) - 10.0, 6.5, false, BOLUS, Align::Center, &lang().num(bo.units, 1));
        }
        for c in &day.carbs {
            let x = x_of(c.sec);
            let y = iy + ih - (c.grams / cmax) as f32 * (ih * 0.9);
            p.line(x, iy + ih, x, y, 0.8, CARBS, true);
            p.diamond(x, y, 3.0, CARBS);
            p.text(x + 4.0, y - 4.0, 6.5, true, CARBS, Align::Left, &format!("{:.0} g", c.grams));
        }
    } else {
        let msg = if b.insulin_visible {
            t("No pump data on this day.")
        } else {
            t("Insulin data is not shared with this viewer.")
        };
        p.text(ix, iy + 30.0, 9.0, false, MUTED, Align::Left, msg);
    }
    // Time axis (local wall clock) under both panels.
    let axis_y = iy + ih;
    for h in 0..=(day.minutes / 180) {
        let minute = h * 180;
        if minute > day.minutes {
            break;
        }
        let x = x_of(minute * 60);
        p.line(x, gy + gh, x, gy + gh + 3.0, 0.5, MUTED, false);
        p.line(x, axis_y, x, axis_y + 3.0, 0.5, MUTED, false);
        p.text(x, axis_y + 6.0, 7.5, false, MUTED, Align::Center, &day.clock(minute));
    }
    // Legend.
    let ly = axis_y + 20.0;
    let mut lx = ix;
    for (label, color) in [
        ("CGM", TEAL),
        (t("Fingerstick"), BG),
        (t("Basal"), BASAL),
        (t("Temp basal"), TEMP),
        (t("Bolus (U)"), BOLUS),
        (t("Suspended"), 0xd1d5db),
        (t("Carbs (g)"), CARBS),
        (t("Alarm"), VERY_HIGH),
    ] {
        p.fill_rect(lx, ly + 1.5, 7.0, 7.0, hex(color));
        lx += 10.0 + p.text(lx + 10.0, ly, 7.5, false, MUTED, Align::Left, label) + 14.0;
    }

    // Events, in four columns.
    let mut events: Vec<(u32, String)> = Vec::new();
    for x in &day.boluses {
        events.push((x.sec, tf("Bolus {units} U", &[("units", &lang().num(x.units, 2))])));
    }
    for x in &day.carbs {
        events.push((x.sec, tf("Carbs {grams} g", &[("grams", &lang().num(x.grams, 0))])));
    }
    for x in &day.bg {
        events.push((x.sec, tf("Fingerstick {value}", &[("value", &glu(unit, Some(f64::from(x.mg_dl))))])));
    }
    for x in &day.basal {
        match x.kind {
            BasalKind::Temp => events.push((
                x.start_sec,
                match x.percent {
                    Some(pc) => tf(
                        "Temp basal {percent} % until {time}",
                        &[("percent", &lang().num(pc, 0)), ("time", &day.clock_sec(x.end_sec))],
                    ),
                    None => tf(
                        "Temp basal {rate} U/h until {time}",
                        &[("rate", &lang().num(x.rate_u_h, 2)), ("time", &day.clock_sec(x.end_sec))],
                    ),
                },
            )),
            BasalKind::Suspended => {
                events.push((x.start_sec, tf("Suspended until {time}", &[("time", &day.clock_sec(x.end_sec))])))
            }
            BasalKind::Scheduled => {}
        }
    }
    for x in &day.alarms {
        events.push((
            x.sec,
            tf("Alarm: {what}", &[("what", &x.description.clone().unwrap_or_else(|| t("alarm").into()))]),
        ));
    }
    events.sort_by_key(|e| e.0);
    let ey = ly + 20.0;
    let rows = ((H - M - 6.0 - ey) / 10.5).floor().max(1.0) as usize;
    let cap = rows * 4;
    for (i, (sec, text)) in events.iter().take(cap).enumerate() {
        let (col, row) = (i / rows, i % rows);
        let x = M + col as f32 * 195.0;
        let y = ey + row as f32 * 10.5;
        p.text(x, y, 7.5, true, TEXT, Align::Left, &day.clock_sec(*sec));
        p.text(x + 30.0, y, 7.5, false, TEXT, Align::Left, text);
    }
    if events.len() > cap {
        p.text(
            W - M,
            ey - 12.0,
            7.5,
            false,
            MUTED,
            Align::Right,
            &tf("{n} more events not listed", &[("n", &(events.len() - cap))]),
        );
    }
}

/// The report as PDF bytes, in English.
pub fn render_report_pdf(b: &ReportBundle) -> Vec<u8> {
    render_report_pdf_in(b, Lang::En)
}

/// The report as PDF bytes, in `lang` (labels, dates and numbers).
pub fn render_report_pdf_in(b: &ReportBundle, lang: Lang) -> Vec<u8> {
    struct Restore(Lang);
    impl Drop for Restore {
        fn drop(&mut self) {
            PDF_LANG.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(PDF_LANG.with(|l| l.replace(lang)));
    let pages = 1 + b.days.len();
    let fonts = RefCell::new(Embedded::default());
    let mut contents: Vec<Vec<u8>> = Vec::with_capacity(pages);
    let mut p = Page::new(&fonts);
    frame(&mut p, b, t("Overview: time in ranges, key figures, AGP, insulin and carbohydrate"), 1, pages);
    overview_page(&mut p, b);
    contents.push(p.finish());
    for (i, day) in b.days.iter().enumerate() {
        let mut p = Page::new(&fonts);
        frame(&mut p, b, t("Daily view: CGM, fingersticks, basal, boluses, carbs and alarms"), i + 2, pages);
        day_page(&mut p, b, day);
        contents.push(p.finish());
    }

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    // Objects 6–10 and 11–15: the embedded regular and bold fonts, if used.
    let (uni, uni_bold) = (Ref::new(6), Ref::new(11));
    let ids: Vec<(Ref, Ref)> = (0..pages).map(|i| (Ref::new(16 + 2 * i as i32), Ref::new(17 + 2 * i as i32))).collect();
    let fonts = fonts.into_inner();
    let (use_uni, use_uni_bold) = (fonts.used(false), fonts.used(true));
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(ids.iter().map(|(page, _)| *page)).count(pages as i32);
    pdf.type1_font(font).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    let title = tf(
        "Diabase report: {name} ({from} to {to})",
        &[
            ("name", &b.overview.meta.patient_name),
            ("from", &day_str(&b.overview.meta.from)),
            ("to", &day_str(&b.overview.meta.to)),
        ],
    );
    pdf.document_info(info)
        .title(TextStr(&title))
        .creator(TextStr("Diabase"))
        .producer(TextStr("Diabase (pdf-writer)"));
    for ((page_id, content_id), content) in ids.iter().zip(contents) {
        let mut page = pdf.page(*page_id);
        page.parent(tree).media_box(Rect::new(0.0, 0.0, W, H)).contents(*content_id);
        {
            let mut resources = page.resources();
            let mut dict = resources.fonts();
            dict.pair(Name(b"F1"), font).pair(Name(b"F2"), bold);
            if use_uni {
                dict.pair(Name(b"F3"), uni);
            }
            if use_uni_bold {
                dict.pair(Name(b"F4"), uni_bold);
            }
        }
        page.finish();
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&content, 6);
        pdf.stream(*content_id, &packed).filter(Filter::FlateDecode);
    }
    if use_uni {
        fonts.write(&mut pdf, false, uni);
    }
    if use_uni_bold {
        fonts.write(&mut pdf, true, uni_bold);
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_maps_latin1_and_dashes() {
        assert_eq!(win_ansi("Zoë – 5 %"), Some(vec![b'Z', b'o', 0xeb, b' ', 0x96, b' ', b'5', b' ', b'%']));
        assert_eq!(win_ansi("≥ 15"), None);
        assert_eq!(win_ansi("Łukasz"), None);
        assert!((text_width(b"Hello", 10.0, false) - 22.78).abs() < 0.01);
    }

    #[test]
    fn other_scripts_use_the_embedded_subset() {
        let mut e = Embedded::default();
        let (codes, w) = e.encode("Żanna Ελένη 日", 10.0, false);
        // Two bytes a character; the unknown ideograph is the `?` glyph.
        assert_eq!(codes.len(), 2 * "Żanna Ελένη 日".chars().count());
        assert!(w > 50.0 && w < 90.0, "width {w}");
        assert_eq!(e.subsets[0].chars.values().filter(|&&c| c == '?').count(), 1);
        // 'n' twice, one glyph; new ids start at 1 (0 is .notdef).
        assert_eq!(&codes[0..2], &[0, 1]);
        assert_eq!(codes[4..6], codes[6..8]);
        assert!(e.used(false) && !e.used(true));
        let mut pdf = Pdf::new();
        e.write(&mut pdf, false, Ref::new(1));
        let bytes = pdf.finish();
        // The subset is small: a handful of glyphs, not the 700 kB face.
        assert!(bytes.len() < 30_000, "{} bytes", bytes.len());
    }
}
