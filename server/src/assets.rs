//! The site's static files (issue 21): content-hashed addresses that browsers
//! keep for a year, brotli and gzip copies made at build time, and the
//! service worker and other fixed addresses revalidated on every use.
//!
//! At start-up the server reads the site folder once ([`Assets::load`]):
//! every file under it is published at its own path, and the app's code and
//! scripts also at a hashed path (`/pkg/diabase.<hash>.wasm`). The HTML names
//! only the hashed paths, so a page always loads the code of the build that
//! rendered it: after a deploy the new HTML names new files, and an old wasm
//! is never run against new server functions. An old hash is a 404.
//!
//! `make site` writes `<file>.br` and `<file>.gz` beside each text and wasm
//! file (`frontend/precompress.mjs`). A copy older than its file (the file
//! was rebuilt without compressing again) is ignored, so a stale copy is
//! never served; such a file is compressed on the fly instead (the
//! compression layer in [`crate::router`]).

use app::AssetUrls;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request, StatusCode, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// `Cache-Control` of a content-hashed file: its address changes with its bytes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a file at a fixed address (`/sw.js`, icons, …): a
/// browser may keep it but asks whether it changed before each use.
pub const REVALIDATE: &str = "no-cache";

/// The files the pages name, published under a hashed address too. The
/// app's JavaScript glue and its wasm share one hash (they only work together).
const HASHED: [&str; 5] =
    ["/pkg/diabase.css", "/echarts.min.js", "/register-sw.js", "/passkeys.js", "/protected-pdf.js"];

/// Hex digits of the hash in a published name (64 bits).
const HASH_LEN: usize = 16;

#[derive(Clone, Debug)]
struct File {
    path: PathBuf,
    immutable: bool,
}

/// The site's files, read once at start-up.
#[derive(Clone, Debug, Default)]
pub struct Assets {
    files: HashMap<String, File>,
    urls: HashMap<String, String>,
    /// The `output_name` the pages' hydration script uses (`diabase.<hash>`).
    output_name: Option<String>,
}

impl Assets {
    /// Reads the site folder at `root` (once per folder and process: the
    /// integration tests build many routers on one folder).
    pub fn load(root: &Path) -> Arc<Assets> {
        static CACHE: Mutex<Option<(PathBuf, Arc<Assets>)>> = Mutex::new(None);
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((r, a)) = cache.as_ref()
            && r == root
        {
            return a.clone();
        }
        let assets = Arc::new(Assets::scan(root));
        *cache = Some((root.to_path_buf(), assets.clone()));
        assets
    }

    /// Reads the site folder at `root`; a missing folder is an empty site.
    pub fn scan(root: &Path) -> Assets {
        let mut files = HashMap::new();
        walk(root, root, &mut files);
        let mut assets = Assets { files, ..Assets::default() };
        for name in HASHED {
            if let Some(bytes) = assets.read(name) {
                let url = hashed_name(name, &digest(&[&bytes]));
                assets.publish(name, url);
            }
        }
        // The hydration script loads `{output_name}.js` and
        // `{output_name}.wasm` (or `_bg.wasm` when built without cargo-leptos).
        let wasm = ["/pkg/diabase.wasm", "/pkg/diabase_bg.wasm"].into_iter().find(|w| assets.files.contains_key(*w));
        if let Some(wasm) = wasm
            && let (Some(js), Some(wasm_bytes)) = (assets.read("/pkg/diabase.js"), assets.read(wasm))
        {
            let hash = digest(&[&js, &wasm_bytes]);
            let stem = format!("diabase.{hash}");
            assets.publish("/pkg/diabase.js", format!("/pkg/{stem}.js"));
            assets.publish(wasm, format!("/pkg/{stem}.wasm"));
            assets.publish(wasm, format!("/pkg/{stem}_bg.wasm"));
            assets.output_name = Some(stem);
        }
        assets
    }

    /// The hashed addresses of the files the pages name.
    pub fn urls(&self) -> AssetUrls {
        AssetUrls(Arc::new(self.urls.clone()))
    }

    /// `diabase.<hash>` when the site holds the app's code, for
    /// `LeptosOptions::output_name`.
    pub fn output_name(&self) -> Option<&str> {
        self.output_name.as_deref()
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(&self.files.get(name)?.path).ok()
    }

    fn publish(&mut self, name: &str, url: String) {
        let Some(file) = self.files.get(name) else { return };
        let file = File { path: file.path.clone(), immutable: true };
        if !url.ends_with("_bg.wasm") {
            self.urls.insert(name.to_string(), url.clone());
        }
        self.files.insert(url, file);
    }

    /// Whether `req` asks for one of the site's files.
    pub fn publishes<B>(&self, req: &Request<B>) -> bool {
        matches!(*req.method(), http::Method::GET | http::Method::HEAD) && self.files.contains_key(req.uri().path())
    }

    /// Answers `req` from the site's files (see [`Assets::publishes`]).
    pub async fn serve(&self, req: Request<Body>) -> Response {
        let Some(file) = self.files.get(req.uri().path()) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let mut service = ServeFile::new(&file.path);
        let (br, gz) = (fresh_copy(&file.path, "br"), fresh_copy(&file.path, "gz"));
        if br {
            service = service.precompressed_br();
        }
        if gz {
            service = service.precompressed_gzip();
        }
        let mut res = match service.oneshot(req).await {
            Ok(r) => r.into_response(),
            Err(e) => {
                tracing::warn!(file = %file.path.display(), error = %e, "static file not readable");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        if !(res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED) {
            return res;
        }
        let h = res.headers_mut();
        let policy = if file.immutable { IMMUTABLE } else { REVALIDATE };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        if br || gz {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        res
    }
}

/// Every file under `dir`, by its URL path; the build's compressed copies
/// (`.br`, `.gz`) are not published under their own names.
fn walk(root: &Path, dir: &Path, out: &mut HashMap<String, File>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(root, &path, out);
            continue;
        }
        if !kind.is_file() || matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz")) {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let Some(rel) = rel.to_str() else { continue };
        let url = format!("/{}", rel.replace(std::path::MAIN_SEPARATOR, "/"));
        out.insert(url, File { path, immutable: false });
    }
}

/// Whether `<path>.<ext>` exists, is not empty and is no older than `path`.
fn fresh_copy(path: &Path, ext: &str) -> bool {
    let mut copy = path.as_os_str().to_owned();
    copy.push(".");
    copy.push(ext);
    let (Ok(orig), Ok(copy)) = (std::fs::metadata(path), std::fs::metadata(PathBuf::from(copy))) else {
        return false;
    };
    match (orig.modified(), copy.modified()) {
        (Ok(o), Ok(c)) => copy.len() > 0 && c >= o,
        _ => false,
    }
}

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())[..HASH_LEN].to_string()
}

/// `/echarts.min.js` + hash → `/echarts.min.<hash>.js`.
fn hashed_name(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}.{hash}.{ext}"),
        _ => format!("{name}.{hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> tempdir::Dir {
        let d = tempdir::Dir::new();
        std::fs::create_dir_all(d.0.join("pkg")).unwrap();
        std::fs::write(d.0.join("pkg/diabase.js"), b"export default function(){}").unwrap();
        std::fs::write(d.0.join("pkg/diabase.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(d.0.join("pkg/diabase.css"), b"body{}").unwrap();
        std::fs::write(d.0.join("sw.js"), b"//sw").unwrap();
        d
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!("diabase-assets-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn names_carry_the_content_hash() {
        let d = site();
        let a = Assets::scan(&d.0);
        let css = a.urls().url("/pkg/diabase.css");
        assert!(
            css.starts_with("/pkg/diabase.") && css.ends_with(".css") && css.len() == "/pkg/diabase..css".len() + 16
        );
        let stem = a.output_name().unwrap().to_string();
        assert!(a.files[&format!("/pkg/{stem}.js")].immutable);
        assert!(a.files[&format!("/pkg/{stem}.wasm")].immutable);
        assert!(!a.files["/sw.js"].immutable);
        assert_eq!(a.urls().url("/sw.js"), "/sw.js", "the worker keeps its address");
        // A changed wasm is a new name for the glue too.
        std::fs::write(d.0.join("pkg/diabase.wasm"), b"\0asm\x01\0\0\0\0\x03\x01x").unwrap();
        let b = Assets::scan(&d.0);
        assert_ne!(b.output_name(), a.output_name());
        assert_eq!(b.urls().url("/pkg/diabase.css"), css, "an unchanged file keeps its name");
        assert!(!b.files.contains_key(&format!("/pkg/{stem}.wasm")), "the old name is gone");
    }

    #[test]
    fn a_compressed_copy_older_than_its_file_is_not_used() {
        let d = site();
        let css = d.0.join("pkg/diabase.css");
        std::fs::write(d.0.join("pkg/diabase.css.br"), b"x").unwrap();
        assert!(fresh_copy(&css, "br"));
        assert!(!fresh_copy(&css, "gz"), "no copy");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options().write(true).open(d.0.join("pkg/diabase.css.br")).unwrap().set_modified(old).unwrap();
        assert!(!fresh_copy(&css, "br"));
        // Compressed copies are never published under their own names.
        assert!(!Assets::scan(&d.0).files.contains_key("/pkg/diabase.css.br"));
    }

    #[test]
    fn hashed_names() {
        assert_eq!(hashed_name("/echarts.min.js", "ab"), "/echarts.min.ab.js");
        assert_eq!(hashed_name("/pkg/diabase.css", "ab"), "/pkg/diabase.ab.css");
    }
}
