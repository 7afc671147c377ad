//! Configuration: defaults, then environment variables (`DIABASE_…`,
//! `DATABASE_URL`), then command-line flags. `diabase serve` works with no
//! environment at all: SQLite under ./data, the site files found beside the
//! binary or in ./target/site.

use app::service::Config;
use leptos::config::LeptosOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name).ok().map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

fn env_num(name: &str) -> Option<i64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| store::DEFAULT_DATABASE_URL.to_string())
}

/// The field-encryption key file: `DIABASE_KEY_FILE`, else `data/diabase.key`
/// (created with a new random key, mode 0600, on first use).
pub fn key_file() -> PathBuf {
    std::env::var("DIABASE_KEY_FILE")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data/diabase.key"))
}

/// The key ring: the key file's key seals; the keys of the files listed in
/// `DIABASE_OLD_KEY_FILES` (comma-separated) still open values sealed before
/// a rotation.
pub fn field_cipher() -> Result<store::crypto::FieldCipher, store::crypto::CryptoError> {
    use store::crypto::FieldCipher;
    let key = FieldCipher::load_or_create(&key_file())?;
    let mut old = Vec::new();
    // Keys a rotation left beside the key file (`.new` while one runs,
    // `.retired-*` after) still open values.
    let kf = key_file();
    if let (Some(dir), Some(name)) = (kf.parent(), kf.file_name().and_then(|n| n.to_str())) {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let f = e.file_name().to_string_lossy().to_string();
                if (f == format!("{name}.new") || f.starts_with(&format!("{name}.retired-")))
                    && let Some(k) = std::fs::read_to_string(e.path()).ok().and_then(|t| store::crypto::parse_key(&t))
                {
                    old.push(k);
                }
            }
        }
    }
    if let Ok(list) = std::env::var("DIABASE_OLD_KEY_FILES") {
        for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let path = Path::new(p);
            let text = std::fs::read_to_string(path)
                .map_err(|source| store::crypto::CryptoError::KeyFile { path: p.to_string(), source })?;
            old.push(
                store::crypto::parse_key(&text).ok_or(store::crypto::CryptoError::KeyFormat { path: p.to_string() })?,
            );
        }
    }
    Ok(FieldCipher::with_old_keys(key, old))
}

/// The certificate chain and key files of `DIABASE_TLS_CERT` and
/// `DIABASE_TLS_KEY`: both set, HTTPS; neither, plain HTTP (behind a proxy);
/// only one is a configuration error.
pub fn tls_files() -> Result<Option<(PathBuf, PathBuf)>, String> {
    let get = |n: &str| std::env::var(n).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    match (get("DIABASE_TLS_CERT"), get("DIABASE_TLS_KEY")) {
        (Some(c), Some(k)) => Ok(Some((PathBuf::from(c), PathBuf::from(k)))),
        (None, None) => Ok(None),
        (Some(_), None) => Err("DIABASE_TLS_CERT is set but DIABASE_TLS_KEY is not: set both for HTTPS".into()),
        (None, Some(_)) => Err("DIABASE_TLS_KEY is set but DIABASE_TLS_CERT is not: set both for HTTPS".into()),
    }
}

/// The service configuration from the environment.
pub fn service_config() -> Result<Config, store::crypto::CryptoError> {
    let mut c = Config { cipher: std::sync::Arc::new(field_cipher()?), ..Config::default() };
    c.smtp_url = std::env::var("DIABASE_SMTP_URL").ok().filter(|s| !s.trim().is_empty());
    c.sms =
        std::env::var("DIABASE_SMS_URL").ok().filter(|s| !s.trim().is_empty()).map(|url| app::service::sms::Gateway {
            url: url.trim().to_string(),
            token: std::env::var("DIABASE_SMS_TOKEN").ok().filter(|s| !s.trim().is_empty()),
            from: std::env::var("DIABASE_SMS_FROM").ok().filter(|s| !s.trim().is_empty()),
        });
    if let Ok(from) = std::env::var("DIABASE_MAIL_FROM")
        && !from.trim().is_empty()
    {
        c.mail_from = from.trim().to_string();
    }
    if let Ok(dir) = std::env::var("DIABASE_MAIL_OUTBOX")
        && !dir.trim().is_empty()
    {
        c.mail_outbox = PathBuf::from(dir);
    }
    let public_url = std::env::var("DIABASE_PUBLIC_URL").ok().filter(|s| !s.trim().is_empty());
    if let Some(u) = &public_url {
        c.public_url = u.trim_end_matches('/').to_string();
    }
    let tls = matches!(tls_files(), Ok(Some(_)));
    c.secure_cookies = env_flag("DIABASE_SECURE_COOKIES")
        .unwrap_or_else(|| tls || public_url.as_deref().is_some_and(|u| u.starts_with("https://")));
    if let Some(u) = public_url {
        c.extra_origins.push(u.trim_end_matches('/').to_string());
    }
    if let Some(m) = env_num("DIABASE_SESSION_IDLE_MINUTES").filter(|m| *m > 0) {
        c.session_idle_ms = m * 60_000;
    }
    if let Some(h) = env_num("DIABASE_SESSION_ABSOLUTE_HOURS").filter(|h| *h > 0) {
        c.session_absolute_ms = h * 3_600_000;
    }
    if let Some(n) = env_num("DIABASE_LOGIN_LIMIT_PER_EMAIL").filter(|n| *n > 0) {
        c.login_limit_per_email = n as u32;
    }
    if let Some(mb) = env_num("DIABASE_MAX_UPLOAD_MB").filter(|n| *n > 0) {
        c.max_upload_bytes = (mb as usize).saturating_mul(1024 * 1024).min(app::service::import::MAX_FILE_BYTES);
    }
    if let Some(n) = env_num("DIABASE_LOGIN_LIMIT_PER_IP").filter(|n| *n > 0) {
        c.login_limit_per_ip = n as u32;
    }
    if let Some(n) = env_num("DIABASE_NS_FAILED_AUTH_LIMIT").filter(|n| *n > 0) {
        c.ns_failed_auth_limit = n as u32;
    }
    Ok(c)
}

pub fn trust_proxy() -> bool {
    env_flag("DIABASE_TRUST_PROXY").unwrap_or(false)
}

/// `DIABASE_TRUSTED_PROXY_HOPS`: how many trusted proxies append to
/// `X-Forwarded-For` (default 1: the rightmost entry is the client's).
/// Anything but a whole number from 1 to 16 stops the server at start.
pub fn trusted_proxy_hops() -> Result<usize, String> {
    parse_proxy_hops(std::env::var("DIABASE_TRUSTED_PROXY_HOPS").ok().as_deref())
}

pub fn parse_proxy_hops(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(1),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=16).contains(n))
            .ok_or_else(|| format!("DIABASE_TRUSTED_PROXY_HOPS must be a whole number from 1 to 16, not {v:?}")),
    }
}

/// Where the compiled site (pkg/, icons, manifest, …) lives.
pub fn site_root() -> PathBuf {
    for var in ["DIABASE_SITE_ROOT", "LEPTOS_SITE_ROOT"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return PathBuf::from(v);
        }
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("site"));
        candidates.push(dir.join("../site"));
        candidates.push(dir.join("../../site"));
    }
    candidates.push(PathBuf::from("target/site"));
    candidates.into_iter().find(|p| p.join("pkg").is_dir()).unwrap_or_else(|| PathBuf::from("target/site"))
}

pub fn leptos_options(addr: SocketAddr, site_root: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("diabase")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

pub fn default_addr() -> SocketAddr {
    std::env::var("DIABASE_ADDR")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_hops_default_to_one_and_refuse_nonsense() {
        use super::parse_proxy_hops as p;
        assert_eq!(p(None), Ok(1));
        assert_eq!(p(Some(" ")), Ok(1));
        assert_eq!(p(Some("2")), Ok(2));
        for bad in ["0", "-1", "two", "1.5", "17"] {
            assert!(p(Some(bad)).is_err(), "{bad}");
        }
    }
}
