//! Signing keys, public keys, their one-line text files, key ids and the trust list.
//!
//! Key files are one line each, `<kind> <64 lowercase hex digits>` (see `docs/bundle.md`), so
//! they survive copy-paste and a trust list is simply the concatenation of `.pub` files.

use std::fmt;

use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};

use crate::error::KeyError;

/// First word of a secret key file; the `-v1` is bumped if the encoding ever changes.
pub const SECRET_KEY_KIND: &str = "ppis-ed25519-secret-v1";
/// First word of a public key file, and of every line of a trust list.
pub const PUBLIC_KEY_KIND: &str = "ppis-ed25519-public-v1";

/// Bytes of the key id shown to people: a prefix of the SHA-256 of the public key. Trust is
/// decided on the full public key, never on the id, so a short id is only a display concern.
const KEY_ID_BYTES: usize = 8;

/// Short name of a public key: the first 8 bytes of SHA-256 over its 32 bytes, in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_BYTES]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

/// An ed25519 public key known to be a valid curve point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Accepts the 32 raw bytes of a public key if they decode to a curve point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<PublicKey, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::BadPublicKey("the bytes are not an ed25519 point".into()))?;
        Ok(PublicKey(bytes))
    }

    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    pub fn id(&self) -> KeyId {
        key_id_of(&self.0)
    }

    /// The `.pub` file text: one line, ending in a newline.
    pub fn to_key_file(&self) -> String {
        format!("{PUBLIC_KEY_KIND} {}\n", to_hex(&self.0))
    }

    /// Parses a `.pub` file holding exactly one key.
    pub fn from_key_file(text: &[u8]) -> Result<PublicKey, KeyError> {
        let bytes = parse_single_key_line(text, PUBLIC_KEY_KIND)?;
        PublicKey::from_bytes(bytes)
    }

    /// Checks a signature made with [`SigningKey::sign`]. Uses strict verification so that a
    /// signature has exactly one accepted encoding (no malleability) and weak keys are refused.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else { return false };
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

/// Id of raw public key bytes, also for bytes that are not a valid key (to name them in errors).
pub(crate) fn key_id_of(public_key_bytes: &[u8; 32]) -> KeyId {
    let digest = Sha256::digest(public_key_bytes);
    let mut id = [0u8; KEY_ID_BYTES];
    id.copy_from_slice(&digest[..KEY_ID_BYTES]);
    KeyId(id)
}

/// An ed25519 secret key. `Debug` shows only the key id; the secret is zeroed on drop by
/// `ed25519-dalek`.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public_key().id())
    }
}

impl SigningKey {
    /// A key from a 32-byte seed (the RFC 8032 secret key). Deterministic: tests and fixtures
    /// use it; real keys come from [`keygen`].
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        let key = SigningKey::from_seed(seed);
        seed.fill(0);
        Ok(key)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Ed25519 (pure, RFC 8032) signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The secret key file text: one line, ending in a newline. Whoever writes it to disk must
    /// make it readable by its owner only.
    pub fn to_key_file(&self) -> String {
        format!("{SECRET_KEY_KIND} {}\n", to_hex(self.0.as_bytes()))
    }

    /// Parses a secret key file.
    pub fn from_key_file(text: &[u8]) -> Result<SigningKey, KeyError> {
        let seed = parse_single_key_line(text, SECRET_KEY_KIND)?;
        Ok(SigningKey::from_seed(seed))
    }
}

/// Generates a key pair and returns the contents of the secret key file and of the public key
/// file (`ppisc keygen -o KEY` writes them to `KEY` and `KEY.pub`).
pub fn keygen() -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let key = SigningKey::generate()?;
    Ok((key.to_key_file().into_bytes(), key.public_key().to_key_file().into_bytes()))
}

/// The public keys whose signatures a reader accepts. Text form: one public key line per key,
/// blank lines and lines starting with `#` ignored, so `cat *.pub > trusted` builds one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustList {
    keys: Vec<PublicKey>,
}

impl TrustList {
    pub fn new() -> TrustList {
        TrustList::default()
    }

    /// Adds a key; adding a key twice changes nothing.
    pub fn add(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parses a trust list file (or a single `.pub` file). A bad line is an error naming its
    /// 1-based number, never skipped: a typo must not silently drop a key.
    pub fn parse(text: &[u8]) -> Result<TrustList, KeyError> {
        let text = std::str::from_utf8(text).map_err(|_| KeyError::BadKeyFile("not UTF-8 text".into()))?;
        let mut list = TrustList::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = parse_key_line(line, PUBLIC_KEY_KIND)
                .map_err(|e| KeyError::BadKeyFile(format!("line {}: {e}", index + 1)))?;
            let key =
                PublicKey::from_bytes(bytes).map_err(|e| KeyError::BadPublicKey(format!("line {}: {e}", index + 1)))?;
            list.add(key);
        }
        Ok(list)
    }
}

impl FromIterator<PublicKey> for TrustList {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> TrustList {
        let mut list = TrustList::new();
        for key in iter {
            list.add(key);
        }
        list
    }
}

/// A key file: one key line, optionally surrounded by whitespace (a trailing newline).
fn parse_single_key_line(text: &[u8], kind: &str) -> Result<[u8; 32], KeyError> {
    let text = std::str::from_utf8(text).map_err(|_| KeyError::BadKeyFile("not UTF-8 text".into()))?;
    let line = text.trim();
    if line.contains('\n') {
        return Err(KeyError::BadKeyFile("expected exactly one line".into()));
    }
    parse_key_line(line, kind).map_err(KeyError::BadKeyFile)
}

/// `<kind> <64 hex digits>`, separated by one space.
fn parse_key_line(line: &str, kind: &str) -> Result<[u8; 32], String> {
    let Some((found_kind, hex)) = line.split_once(' ') else {
        return Err(format!("expected \"{kind} <64 hex digits>\""));
    };
    if found_kind != kind {
        let shown: String = found_kind.chars().take(40).collect();
        return Err(format!("expected a {kind:?} key, found {shown:?}"));
    }
    let mut bytes = [0u8; 32];
    if !from_hex(hex, &mut bytes) {
        return Err("the key is not 64 hex digits".into());
    }
    Ok(bytes)
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[(byte >> 4) as usize] as char);
        text.push(DIGITS[(byte & 0xf) as usize] as char);
    }
    text
}

/// Decodes exactly `out.len() * 2` hex digits (either case) into `out`; false on any other input.
pub(crate) fn from_hex(text: &str, out: &mut [u8]) -> bool {
    let digits = text.as_bytes();
    if digits.len() != out.len() * 2 {
        return false;
    }
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (Some(high), Some(low)) = ((pair[0] as char).to_digit(16), (pair[1] as char).to_digit(16)) else {
            return false;
        };
        *slot = (high << 4 | low) as u8;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_reject_the_wrong_kind() {
        let key = SigningKey::from_seed([7; 32]);
        let secret = key.to_key_file();
        let public = key.public_key().to_key_file();
        assert!(secret.starts_with("ppis-ed25519-secret-v1 ") && secret.ends_with('\n'));
        assert_eq!(SigningKey::from_key_file(secret.as_bytes()).unwrap().public_key(), key.public_key());
        assert_eq!(PublicKey::from_key_file(public.as_bytes()).unwrap(), key.public_key());
        // A secret key must never be accepted where a public key is expected, and vice versa.
        assert!(PublicKey::from_key_file(secret.as_bytes()).is_err());
        assert!(SigningKey::from_key_file(public.as_bytes()).is_err());
        assert!(PublicKey::from_key_file(b"ppis-ed25519-public-v1 abcd\n").is_err());
        assert!(PublicKey::from_key_file(format!("{public}{public}").as_bytes()).is_err());
    }

    #[test]
    fn keygen_makes_distinct_usable_keys() {
        let (secret_a, public_a) = keygen().unwrap();
        let (secret_b, _) = keygen().unwrap();
        assert_ne!(secret_a, secret_b);
        let key = SigningKey::from_key_file(&secret_a).unwrap();
        let public = PublicKey::from_key_file(&public_a).unwrap();
        assert_eq!(key.public_key(), public);
        let signature = key.sign(b"message");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagE", &signature));
    }

    #[test]
    fn trust_list_parses_concatenated_pub_files_and_names_bad_lines() {
        let a = SigningKey::from_seed([1; 32]).public_key();
        let b = SigningKey::from_seed([2; 32]).public_key();
        let text = format!("# ops keys\n{}\n{}{}", a.to_key_file(), b.to_key_file(), a.to_key_file());
        let list = TrustList::parse(text.as_bytes()).unwrap();
        assert_eq!(list.keys(), &[a, b]);
        let error = TrustList::parse(format!("{}oops\n", a.to_key_file()).as_bytes()).unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn key_id_is_a_stable_prefix_of_the_key_hash() {
        let key = SigningKey::from_seed([0; 32]).public_key();
        assert_eq!(key.id().to_string().len(), 16);
        assert_eq!(key.id(), key_id_of(&key.to_bytes()));
        assert_ne!(key.id(), SigningKey::from_seed([1; 32]).public_key().id());
    }
}
