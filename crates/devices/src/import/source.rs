//! The byte source under every importer: the head read up front (for sniffing), then the rest
//! of the reader; a UTF-8 BOM is skipped and UTF-16 input is transcoded to UTF-8 on the fly.

use std::borrow::Cow;
use std::io::{self, Read};

/// How many bytes [`crate::import::import`] reads up front to sniff encoding, delimiter and header.
pub const HEAD_LEN: usize = 64 * 1024;

pub(crate) fn read_head<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; HEAD_LEN];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    Ok(head)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Utf8,
    Utf16Le,
    Utf16Be,
}

fn sniff_encoding(head: &[u8]) -> (Enc, usize) {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return (Enc::Utf8, 3);
    }
    if head.starts_with(&[0xFF, 0xFE]) {
        return (Enc::Utf16Le, 2);
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return (Enc::Utf16Be, 2);
    }
    // UTF-16 without a BOM: ASCII text has a zero in every other byte.
    if head.len() >= 8 {
        let n = head.len().min(512) & !1;
        let (mut zero_odd, mut zero_even) = (0, 0);
        for (i, &b) in head[..n].iter().enumerate() {
            if b == 0 {
                if i % 2 == 1 { zero_odd += 1 } else { zero_even += 1 }
            }
        }
        let half = n / 2;
        if zero_odd * 10 >= half * 9 && zero_even == 0 {
            return (Enc::Utf16Le, 0);
        }
        if zero_even * 10 >= half * 9 && zero_odd == 0 {
            return (Enc::Utf16Be, 0);
        }
    }
    (Enc::Utf8, 0)
}

fn encoding_of(e: Enc) -> &'static encoding_rs::Encoding {
    match e {
        Enc::Utf8 => encoding_rs::UTF_8,
        Enc::Utf16Le => encoding_rs::UTF_16LE,
        Enc::Utf16Be => encoding_rs::UTF_16BE,
    }
}

/// The head as text (lossy), for format detection.
pub(crate) fn sniff_text(head: &[u8]) -> Cow<'_, str> {
    let (enc, skip) = sniff_encoding(head);
    let body = &head[skip..];
    match enc {
        Enc::Utf8 => String::from_utf8_lossy(body),
        e => {
            let (text, _) = encoding_of(e).decode_without_bom_handling(body);
            text
        }
    }
}

struct Raw<R> {
    head: Vec<u8>,
    pos: usize,
    rest: R,
}

impl<R: Read> Read for Raw<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.head.len() {
                // Free the head once served.
                self.head = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

struct Transcoder {
    decoder: encoding_rs::Decoder,
    inbuf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    in_eof: bool,
    out: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    finished: bool,
}

/// The reader every importer parses from.
pub(crate) struct Source<R> {
    raw: Raw<R>,
    sniff: String,
    transcoder: Option<Box<Transcoder>>,
}

impl<R: Read> Source<R> {
    pub(crate) fn new(head: Vec<u8>, rest: R) -> Self {
        let (enc, skip) = sniff_encoding(&head);
        let sniff = sniff_text(&head).into_owned();
        let transcoder = match enc {
            Enc::Utf8 => None,
            e => Some(Box::new(Transcoder {
                decoder: encoding_of(e).new_decoder_without_bom_handling(),
                inbuf: vec![0u8; 16 * 1024].into_boxed_slice(),
                in_pos: 0,
                in_len: 0,
                in_eof: false,
                out: vec![0u8; 32 * 1024].into_boxed_slice(),
                out_pos: 0,
                out_len: 0,
                finished: false,
            })),
        };
        Source { raw: Raw { head, pos: skip, rest }, sniff, transcoder }
    }

    /// The decoded head (lossy), for delimiter and header sniffing.
    pub(crate) fn sniff(&self) -> String {
        self.sniff.clone()
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(t) = self.transcoder.as_mut() else {
            return self.raw.read(buf);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if t.out_pos < t.out_len {
                let n = buf.len().min(t.out_len - t.out_pos);
                buf[..n].copy_from_slice(&t.out[t.out_pos..t.out_pos + n]);
                t.out_pos += n;
                return Ok(n);
            }
            if t.finished {
                return Ok(0);
            }
            if t.in_pos == t.in_len && !t.in_eof {
                let n = loop {
                    match self.raw.read(&mut t.inbuf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                t.in_pos = 0;
                t.in_len = n;
                t.in_eof = n == 0;
            }
            let (result, read, written, _) =
                t.decoder.decode_to_utf8(&t.inbuf[t.in_pos..t.in_len], &mut t.out, t.in_eof);
            t.in_pos += read;
            t.out_pos = 0;
            t.out_len = written;
            if t.in_eof && t.in_pos == t.in_len && result == encoding_rs::CoderResult::InputEmpty {
                t.finished = true;
            }
        }
    }
}

/// Keeps the CSV reader's line numbers true: `csv` reports a record after skipped blank lines
/// (and after the `\n` of a CRLF) at the line where the skipping began. Rows are therefore split
/// on `\n` only (the `\r` of CRLF stays at the end of the last field, and every field is trimmed),
/// and a space is put into each LF-only blank line so that it is a (blank) record, not skipped.
pub(crate) struct Lines<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    prev: u8,
}

impl<R: Read> Lines<R> {
    pub(crate) fn new(inner: R) -> Self {
        Lines { inner, buf: vec![0u8; 32 * 1024].into_boxed_slice(), pos: 0, len: 0, prev: b'\n' }
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.len {
            self.len = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.pos = 0;
            if self.len == 0 {
                return Ok(0);
            }
        }
        let mut o = 0;
        while o < out.len() && self.pos < self.len {
            if self.prev == b'\n' && self.buf[self.pos] == b'\n' {
                out[o] = b' ';
                self.prev = b' ';
                o += 1;
                continue;
            }
            // Copy up to and including the next newline, as far as fits.
            let lim = (self.len - self.pos).min(out.len() - o);
            let seg = &self.buf[self.pos..self.pos + lim];
            let n = seg.iter().position(|&c| c == b'\n').map_or(lim, |i| i + 1);
            out[o..o + n].copy_from_slice(&seg[..n]);
            self.prev = seg[n - 1];
            o += n;
            self.pos += n;
        }
        Ok(o)
    }
}

/// The CSV reader every CSV importer uses: no header handling, ragged rows allowed, true line
/// numbers (see [`Lines`]).
pub(crate) fn csv_reader<R: Read>(src: R, delimiter: u8) -> csv::Reader<Lines<R>> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(64 * 1024)
        .from_reader(Lines::new(src))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn utf16_with_bom_is_transcoded() {
        let text = "Index,Date\n1,2015/01/01 ÄÖ\n";
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let mut r = &bytes[..];
        let head = read_head(&mut r).unwrap();
        let mut s = Source::new(head, r);
        assert!(s.sniff().starts_with("Index,Date"));
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn utf8_bom_is_skipped() {
        let bytes = b"\xEF\xBB\xBFabc".to_vec();
        let mut s = Source::new(bytes, &b""[..]);
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "abc");
    }

    #[test]
    fn csv_line_numbers_are_true() {
        for data in ["a\r\nb\r\n\r\nc\r\n\"x\ny\"\r\nd\r\n", "a\nb\n\nc\n\"x\ny\"\nd\n", "\n\na\nb\n\n\nc\n\"x\ny\"\nd"]
        {
            let mut r = csv_reader(data.as_bytes(), b',');
            let mut rec = csv::ByteRecord::new();
            let mut seen = Vec::new();
            while r.read_byte_record(&mut rec).unwrap() {
                let f = String::from_utf8_lossy(crate::import::text::trim(&rec[0])).to_string();
                if !f.is_empty() {
                    seen.push((f, rec.position().unwrap().line()));
                }
            }
            let want = if data.starts_with('\n') {
                vec![("a".to_string(), 3), ("b".into(), 4), ("c".into(), 7), ("x\ny".into(), 8), ("d".into(), 10)]
            } else {
                vec![("a".to_string(), 1), ("b".into(), 2), ("c".into(), 4), ("x\ny".into(), 5), ("d".into(), 7)]
            };
            assert_eq!(seen, want, "{data:?}");
        }
    }
}
