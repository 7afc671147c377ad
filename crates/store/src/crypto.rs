//! Field encryption at rest for personal identifiers (names, dates of birth,
//! MRNs, notes): XChaCha20-Poly1305 with a random 192-bit nonce per value,
//! under a 256-bit key read from a file. A sealed value reads
//! `enc1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`; the key id (the first
//! 8 hex digits of the key's SHA-256) lets a key ring hold the old keys while
//! `diabase keys rotate` re-encrypts. Values stored before encryption was on
//! (no `enc1:` prefix) read back as they are.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc1:";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the key file {path} cannot be read or written: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("the key file {path} must hold 32 bytes as 64 hex digits")]
    KeyFormat { path: String },
    #[error("a stored value was sealed with key {0}, which is not in the key ring")]
    UnknownKey(String),
    #[error("a stored value failed authentication (wrong key or tampered)")]
    Tampered,
}

/// The keys: the first seals, all of them open.
#[derive(Clone)]
pub struct FieldCipher {
    keys: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher").field("key_ids", &self.keys.iter().map(|k| &k.1).collect::<Vec<_>>()).finish()
    }
}

fn key_id(key: &[u8; 32]) -> String {
    let mut id = hex::encode(Sha256::digest(key));
    id.truncate(8);
    id
}

impl FieldCipher {
    /// A cipher with one key.
    pub fn new(key: [u8; 32]) -> Self {
        let id = key_id(&key);
        FieldCipher { keys: vec![(key, id)] }
    }

    /// A cipher whose first key seals and whose others still open.
    pub fn with_old_keys(key: [u8; 32], old: impl IntoIterator<Item = [u8; 32]>) -> Self {
        let mut c = Self::new(key);
        for k in old {
            let id = key_id(&k);
            if !c.keys.iter().any(|(_, i)| *i == id) {
                c.keys.push((k, id));
            }
        }
        c
    }

    /// A fresh random key (tests, first start).
    pub fn random_key() -> [u8; 32] {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        k
    }

    /// Reads the key file (64 hex digits), creating it with a new random key
    /// (mode 0600) when it does not exist.
    pub fn load_or_create(path: &std::path::Path) -> Result<[u8; 32], CryptoError> {
        let p = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => parse_key(&text).ok_or(CryptoError::KeyFormat { path: p }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| CryptoError::KeyFile { path: p.clone(), source })?;
                }
                let key = Self::random_key();
                match write_private(path, &format!("{}\n", hex::encode(key))) {
                    Ok(()) => Ok(key),
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(path)
                            .map_err(|source| CryptoError::KeyFile { path: p.clone(), source })?;
                        parse_key(&text).ok_or(CryptoError::KeyFormat { path: p })
                    }
                    Err(source) => Err(CryptoError::KeyFile { path: p, source }),
                }
            }
            Err(source) => Err(CryptoError::KeyFile { path: p, source }),
        }
    }

    /// This ring (sealing with its first key) plus every key of `other`.
    pub fn merged_with(&self, other: &FieldCipher) -> FieldCipher {
        let mut c = self.clone();
        for (k, id) in &other.keys {
            if !c.keys.iter().any(|(_, i)| i == id) {
                c.keys.push((*k, id.clone()));
            }
        }
        c
    }

    /// The id of the sealing key.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].1
    }

    /// Seals `plain` under the current key.
    pub fn seal(&self, plain: &str) -> String {
        let (key, id) = &self.keys[0];
        let cipher = XChaCha20Poly1305::new(key.into());
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce cannot fail.
        let ct = cipher.encrypt(XNonce::from_slice(&nonce), plain.as_bytes()).unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("{PREFIX}{id}:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(blob))
    }

    /// Opens a sealed value; a value without the prefix is returned as is.
    pub fn open(&self, stored: &str) -> Result<String, CryptoError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, b64) = rest.split_once(':').ok_or(CryptoError::Tampered)?;
        let (key, _) =
            self.keys.iter().find(|(_, i)| i == id).ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        let blob = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64).map_err(|_| CryptoError::Tampered)?;
        if blob.len() < 24 + 16 {
            return Err(CryptoError::Tampered);
        }
        let cipher = XChaCha20Poly1305::new(key.into());
        let plain = cipher.decrypt(XNonce::from_slice(&blob[..24]), &blob[24..]).map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Tampered)
    }

    /// Opens an optional value; a value that cannot be opened reads as
    /// "[unreadable]" (and is logged) rather than failing a whole page.
    pub fn open_lossy(&self, stored: Option<&str>) -> Option<String> {
        stored.map(|s| match self.open(s) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "a sealed field could not be opened");
                "[unreadable]".to_string()
            }
        })
    }

    /// Whether `stored` is sealed under the current key (rotation skips those).
    pub fn is_current(&self, stored: &str) -> bool {
        stored.strip_prefix(PREFIX).and_then(|r| r.split_once(':')).is_some_and(|(id, _)| id == self.keys[0].1)
    }

    /// Sub-keys for `purpose`, one per key of the ring (the current key's
    /// first): HMAC-SHA256(key, purpose). A keyed hash made under the
    /// current sub-key still verifies against an old one after `diabase
    /// keys rotate`, as long as the old key stays in the ring.
    pub fn subkeys(&self, purpose: &str) -> Vec<[u8; 32]> {
        use hmac::{Hmac, Mac};
        self.keys
            .iter()
            .map(|(k, _)| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("HMAC takes any key length");
                mac.update(purpose.as_bytes());
                mac.finalize().into_bytes().into()
            })
            .collect()
    }

    /// A keyed hash for equality lookups of a sealed value (an MRN within a
    /// clinic): HMAC-SHA256 under a key derived from the current key.
    pub fn index(&self, scope: &str, value: &str) -> String {
        use hmac::{Hmac, Mac};
        let derived = Sha256::digest([b"diabase-index-v1".as_slice(), &self.keys[0].0].concat());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&derived).expect("HMAC takes any key length");
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let mut h = hex::encode(mac.finalize().into_bytes());
        h.truncate(32);
        h
    }
}

impl FieldCipher {
    /// The keys that seal the audit log's head: HMAC-SHA256(key, "diabase
    /// audit head v1") of each key, the current one first. A separate key
    /// per purpose: the AEAD key itself never keys a MAC.
    pub fn audit_key(&self) -> crate::audit::AuditKey {
        use hmac::{Hmac, Mac};
        let derived = self
            .keys
            .iter()
            .map(|(k, _)| {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("HMAC takes any key length");
                m.update(b"diabase audit head v1");
                m.finalize().into_bytes().into()
            })
            .collect();
        crate::audit::AuditKey::from_derived(derived)
    }
}

/// Parses 64 hex digits (surrounding whitespace allowed).
pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let c = FieldCipher::new([7u8; 32]);
        let s = c.seal("MRN-0042");
        assert!(s.starts_with("enc1:"));
        assert!(!s.contains("MRN-0042"));
        assert_eq!(c.open(&s).unwrap(), "MRN-0042");
        // A fresh nonce each time.
        assert_ne!(c.seal("MRN-0042"), s);
        // Legacy plaintext reads as is.
        assert_eq!(c.open("plain").unwrap(), "plain");
    }

    #[test]
    fn refuses_tampering_and_unknown_keys() {
        let c = FieldCipher::new([7u8; 32]);
        let s = c.seal("Jane Doe");
        let mut bytes = s.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(matches!(c.open(&String::from_utf8(bytes).unwrap()), Err(CryptoError::Tampered)));
        let other = FieldCipher::new([9u8; 32]);
        assert!(matches!(other.open(&s), Err(CryptoError::UnknownKey(_))));
        // A ring with the old key opens it; sealing uses the new key.
        let ring = FieldCipher::with_old_keys([9u8; 32], [[7u8; 32]]);
        assert_eq!(ring.open(&s).unwrap(), "Jane Doe");
        assert!(!ring.is_current(&s));
        assert!(ring.is_current(&ring.seal("x")));
    }

    #[test]
    fn subkeys_follow_the_ring() {
        let c = FieldCipher::new([7u8; 32]);
        let a = c.subkeys("diabase recovery codes v1");
        assert_eq!(a.len(), 1);
        assert_ne!(a[0], c.subkeys("another purpose")[0]);
        let ring = FieldCipher::with_old_keys([9u8; 32], [[7u8; 32]]);
        let b = ring.subkeys("diabase recovery codes v1");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1], a[0], "the old key's sub-key is still there");
        assert_ne!(b[0], a[0]);
    }

    #[test]
    fn index_is_keyed_and_scoped() {
        let c = FieldCipher::new([7u8; 32]);
        assert_eq!(c.index("clinic-a", "123"), c.index("clinic-a", "123"));
        assert_ne!(c.index("clinic-a", "123"), c.index("clinic-b", "123"));
        assert_ne!(c.index("clinic-a", "123"), FieldCipher::new([8u8; 32]).index("clinic-a", "123"));
    }

    #[test]
    fn key_file_is_created_private_and_reread() {
        let dir = std::env::temp_dir().join(format!("diabase-key-{}", crate::new_id()));
        let path = dir.join("field.key");
        let k1 = FieldCipher::load_or_create(&path).unwrap();
        let k2 = FieldCipher::load_or_create(&path).unwrap();
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "nothex").unwrap();
        assert!(matches!(FieldCipher::load_or_create(&path), Err(CryptoError::KeyFormat { .. })));
        std::fs::remove_dir_all(dir).ok();
    }
}
