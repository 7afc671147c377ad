//! Password protection of the report PDF: AES-256 under the ISO 32000-2
//! standard security handler (`/Filter /Standard /V 5 /R 6`, crypt filter
//! `/CFM /AESV3`), written with `lopdf`.
//!
//! Every string and stream of the file is encrypted, the Info dictionary
//! included (its `/Title` holds the patient's name); only the trailer's `/ID`
//! and the `/Encrypt` dictionary stay in clear, as the standard requires.
//! Opening the file needs the user password. The owner password is 32 random
//! bytes that nobody is told: printing and copying are allowed, so it would
//! unlock nothing the user password does not.

use lopdf::encryption::crypt_filters::{Aes256CryptFilter, CryptFilter};
use lopdf::{Dictionary, Document, EncryptionState, EncryptionVersion, Object, Permissions, StringFormat};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Upper-case letters and digits without the look-alikes 0/O, 1/I and L: 31 symbols.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const GROUPS: usize = 5;
const GROUP_LEN: usize = 4;

/// The crypt filter's name in `/CF`, `/StmF` and `/StrF` (the name qpdf and Acrobat use).
const CRYPT_FILTER: &[u8] = b"StdCF";

/// Encrypts a PDF with AES-256 (ISO 32000-2 standard security handler, /V 5 /R 6, /CFM /AESV3):
/// opening it needs `password`. Every string and stream is encrypted, including the Info dictionary
/// (its /Title holds the patient's name). Permissions: print and copy allowed (the password protects the content).
pub fn protect(pdf: &[u8], password: &str) -> Result<Vec<u8>, String> {
    if password.is_empty() {
        return Err("the password is empty".to_string());
    }
    let mut doc = Document::load_mem(pdf).map_err(|e| format!("reading the PDF: {e}"))?;
    if doc.trailer.has(b"Encrypt") {
        return Err("the PDF is already encrypted".to_string());
    }

    let mut file_key = [0u8; 32];
    OsRng.fill_bytes(&mut file_key);
    let mut owner = [0u8; 32];
    OsRng.fill_bytes(&mut owner);
    let owner_password = hex::encode(owner);

    // pdf-writer writes no file identifier; readers and qpdf expect one in an encrypted file.
    if !doc.trailer.has(b"ID") {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let id = Object::String(id.to_vec(), StringFormat::Hexadecimal);
        doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
    }

    // AES-256 R6 is PDF 2.0; a 1.x file announces it as Adobe extension level 8 (as qpdf and Acrobat do).
    if doc.version.as_str() < "2.0" {
        let catalog = doc.catalog_mut().map_err(|e| format!("the PDF has no catalog: {e}"))?;
        if !catalog.has(b"Extensions") {
            let mut adbe = Dictionary::new();
            adbe.set("BaseVersion", Object::Name(b"1.7".to_vec()));
            adbe.set("ExtensionLevel", Object::Integer(8));
            let mut extensions = Dictionary::new();
            extensions.set("ADBE", Object::Dictionary(adbe));
            catalog.set("Extensions", Object::Dictionary(extensions));
        }
        if doc.version.as_str() < "1.7" {
            doc.version = "1.7".to_string();
        }
    }

    let aes256: Arc<dyn CryptFilter> = Arc::new(Aes256CryptFilter);
    let version = EncryptionVersion::V5 {
        encrypt_metadata: true,
        crypt_filters: BTreeMap::from([(CRYPT_FILTER.to_vec(), aes256)]),
        file_encryption_key: &file_key,
        stream_filter: CRYPT_FILTER.to_vec(),
        string_filter: CRYPT_FILTER.to_vec(),
        owner_password: &owner_password,
        user_password: password,
        permissions: Permissions::PRINTABLE
            | Permissions::PRINTABLE_IN_HIGH_QUALITY
            | Permissions::COPYABLE
            | Permissions::COPYABLE_FOR_ACCESSIBILITY,
    };
    let state = EncryptionState::try_from(version).map_err(|e| format!("encryption: {e}"))?;
    doc.encrypt(&state).map_err(|e| format!("encryption: {e}"))?;

    let mut out = Vec::with_capacity(pdf.len() + 4096);
    doc.save_to(&mut out).map_err(|e| format!("writing the PDF: {e}"))?;
    Ok(out)
}

/// A strong generated password to show the user once: 5 groups of 4 characters from an unambiguous
/// alphabet (no 0/O/1/I/L), e.g. "K7QX-M2PD-...": ~100 bits from the OS RNG (rand::rngs::OsRng, `rand` 0.8 is a workspace dependency).
pub fn generate_password() -> String {
    let mut rng = OsRng;
    let mut out = String::with_capacity(GROUPS * (GROUP_LEN + 1));
    for g in 0..GROUPS {
        if g > 0 {
            out.push('-');
        }
        for _ in 0..GROUP_LEN {
            // gen_range samples uniformly (rejection sampling), so no symbol is favoured.
            out.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::LoadOptions;
    use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

    const TITLE: &str = "Diabetes report: Jane Testpatient";
    const TEXT: &str = "Mean glucose 7.3 mmol/L";
    const PLAIN_TEXT: &str = "Uncompressed secret line";

    /// A one-page PDF as `pdf::render_report_pdf` writes it: a Flate-compressed content stream,
    /// an uncompressed one, and an Info dictionary with a title.
    fn sample_pdf() -> (Vec<u8>, Vec<u8>) {
        let (catalog, tree, page, font, info) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5));
        let (packed_id, plain_id) = (Ref::new(6), Ref::new(7));
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids([page]).count(1);
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0)).parent(tree).contents_array([packed_id, plain_id]);
        p.resources().fonts().pair(Name(b"F1"), font);
        p.finish();
        pdf.type1_font(font).base_font(Name(b"Helvetica"));
        pdf.document_info(info).title(TextStr(TITLE)).creator(TextStr("Diabase"));

        let mut c = Content::new();
        c.begin_text().set_font(Name(b"F1"), 14.0).next_line(72.0, 760.0).show(Str(TEXT.as_bytes())).end_text();
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&c.finish(), 6);
        pdf.stream(packed_id, &packed).filter(Filter::FlateDecode);
        let mut c = Content::new();
        c.begin_text().set_font(Name(b"F1"), 12.0).next_line(72.0, 700.0).show(Str(PLAIN_TEXT.as_bytes())).end_text();
        pdf.stream(plain_id, &c.finish());
        (pdf.finish(), packed)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn utf16be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    #[test]
    fn sample_is_readable_in_clear() {
        let (pdf, _) = sample_pdf();
        assert!(contains(&pdf, TITLE.as_bytes()));
        assert!(contains(&pdf, PLAIN_TEXT.as_bytes()));
    }

    #[test]
    fn protected_pdf_holds_no_plaintext() {
        let (pdf, packed) = sample_pdf();
        let out = protect(&pdf, "K7QX-M2PD-ABCD-EFGH-JKMN").expect("protect");
        assert!(out.starts_with(b"%PDF-"));
        for needle in [TITLE.as_bytes(), b"Jane", b"Testpatient", TEXT.as_bytes(), PLAIN_TEXT.as_bytes(), b"Diabase"] {
            assert!(!contains(&out, needle), "plaintext {:?} left in the file", String::from_utf8_lossy(needle));
        }
        assert!(!contains(&out, &utf16be("Testpatient")));
        // The compressed content stream's bytes are not copied over either.
        assert!(!contains(&out, &packed[..packed.len().min(32)]));
    }

    #[test]
    fn protected_pdf_uses_aes256_r6() {
        let (pdf, _) = sample_pdf();
        let out = protect(&pdf, "secret-pass").expect("protect");
        let text = String::from_utf8_lossy(&out);
        for needle in ["/Filter/Standard", "/V 5", "/R 6", "/AESV3", "/Length 256", "/StmF/StdCF", "/StrF/StdCF"] {
            let compact = needle.replace(' ', "");
            assert!(
                text.contains(needle) || text.replace(' ', "").contains(&compact),
                "{needle} missing from the encryption dictionary"
            );
        }
        assert!(text.contains("/ID"), "the trailer has a file identifier");

        let doc = Document::load_mem(&out).expect("loads without decrypting");
        let enc = doc.get_encrypted().expect("/Encrypt");
        assert_eq!(enc.get(b"V").and_then(Object::as_i64).ok(), Some(5));
        assert_eq!(enc.get(b"R").and_then(Object::as_i64).ok(), Some(6));
        let cfm = enc
            .get(b"CF")
            .and_then(Object::as_dict)
            .and_then(|cf| cf.get(b"StdCF"))
            .and_then(Object::as_dict)
            .and_then(|f| f.get(b"CFM"))
            .and_then(Object::as_name)
            .expect("/CF /StdCF /CFM");
        assert_eq!(cfm, b"AESV3");
        // Print (bit 3), copy (bit 5) and high-quality print (bit 12); not modify (bit 4).
        let p = enc.get(b"P").and_then(Object::as_i64).expect("/P");
        assert_eq!(p & (1 << 2), 1 << 2);
        assert_eq!(p & (1 << 4), 1 << 4);
        assert_eq!(p & (1 << 11), 1 << 11);
        assert_eq!(p & (1 << 3), 0);
    }

    #[test]
    fn two_protections_differ() {
        let (pdf, _) = sample_pdf();
        let a = protect(&pdf, "same-password").expect("protect");
        let b = protect(&pdf, "same-password").expect("protect");
        assert_ne!(a, b);
    }

    #[test]
    fn round_trip_with_the_password() {
        let (pdf, _) = sample_pdf();
        let password = generate_password();
        let out = protect(&pdf, &password).expect("protect");
        let doc = Document::load_mem_with_options(&out, LoadOptions::with_password(&password))
            .expect("opens with the password");
        let text = doc.extract_text(&[1]).expect("text");
        assert!(text.contains(TEXT), "{text:?}");
        assert!(text.contains(PLAIN_TEXT), "{text:?}");
        let info = doc
            .trailer
            .get(b"Info")
            .and_then(Object::as_reference)
            .and_then(|id| doc.get_dictionary(id))
            .expect("Info");
        let title = info.get(b"Title").expect("Title");
        assert_eq!(lopdf::decode_text_string(title).expect("title text"), TITLE);
    }

    #[test]
    fn wrong_or_no_password_fails() {
        let (pdf, _) = sample_pdf();
        let out = protect(&pdf, "right-password").expect("protect");
        assert!(Document::load_mem_with_options(&out, LoadOptions::with_password("wrong-password")).is_err());
        // Without a password lopdf loads the shell only: no page text, and the password checks fail.
        let doc = Document::load_mem(&out).expect("loads the shell");
        assert!(doc.extract_text(&[1]).map(|t| !t.contains(TEXT)).unwrap_or(true));
        assert!(doc.authenticate_user_password("").is_err());
        assert!(doc.authenticate_user_password("wrong-password").is_err());
        assert!(doc.authenticate_user_password("right-password").is_ok());
        // The owner password is a different, random one.
        assert!(doc.authenticate_owner_password("right-password").is_err());
    }

    #[test]
    fn empty_password_and_garbage_are_refused() {
        let (pdf, _) = sample_pdf();
        assert!(protect(&pdf, "").is_err());
        assert!(protect(b"not a pdf", "x").is_err());
        let once = protect(&pdf, "x").expect("protect");
        assert!(protect(&once, "y").is_err(), "protecting twice is refused");
    }

    #[test]
    fn generated_password_format() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let pw = generate_password();
            assert_eq!(pw.len(), 24, "{pw}");
            let groups: Vec<&str> = pw.split('-').collect();
            assert_eq!(groups.len(), 5, "{pw}");
            for g in groups {
                assert_eq!(g.len(), 4, "{pw}");
                assert!(g.bytes().all(|b| ALPHABET.contains(&b)), "{pw}");
            }
            for bad in ['0', 'O', '1', 'I', 'L'] {
                assert!(!pw.contains(bad), "{pw}");
            }
            assert!(seen.insert(pw));
        }
        // 20 symbols of 31 give about 99 bits.
        assert_eq!(ALPHABET.len(), 31);
        assert!((20.0 * (ALPHABET.len() as f64).log2()) > 99.0);
    }
}
