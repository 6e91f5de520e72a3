//! Why a bundle or a key file was refused: one variant per cause, each displayed as one line.

use crate::keys::KeyId;

/// A bundle that cannot be written, read or trusted. Every message is a single line that names
/// the cause, so `ppisd` and `ppisc` can print it as is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a ppis bundle: the file does not start with the magic bytes \"PPISBNDL\"")]
    BadMagic,
    #[error(
        "unknown bundle format version {0} (this build reads versions {oldest} to {newest})",
        oldest = crate::MIN_FORMAT_VERSION,
        newest = crate::FORMAT_VERSION
    )]
    UnknownFormatVersion(u16),
    #[error("bundle is truncated: it ends inside {0}")]
    Truncated(String),
    #[error("bundle is oversized: {size} bytes, the limit is {limit} bytes")]
    Oversized { size: u64, limit: u64 },
    #[error("bundle is oversized: more than {limit} bytes")]
    OversizedStream { limit: u64 },
    #[error("bundle header is oversized: {size} bytes, the limit is {limit} bytes")]
    HeaderOversized { size: u64, limit: u64 },
    #[error("bundle has {count} entries, the limit is {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("malformed bundle header: {0}")]
    BadHeader(String),
    #[error("bad entry name {name:?}: {reason}")]
    BadEntryName { name: String, reason: &'static str },
    #[error("bundle lacks the required entry {0:?}")]
    MissingEntry(&'static str),
    #[error("bundle has {0} byte(s) of garbage after the signature block")]
    TrailingBytes(u64),
    #[error("bundle is unsigned: it has no signature block, or an all-zero one")]
    Unsigned,
    #[error("bundle is signed by an untrusted signer {0}")]
    UntrustedSigner(KeyId),
    #[error("bad signature: the bundle was altered after signing or the signature is forged")]
    BadSignature,
    #[error("hash mismatch for entry {0:?}")]
    HashMismatch(String),
    #[error("bad manifest in bundle: {0}")]
    BadManifest(String),
    #[error("cannot read bundle: {0}")]
    Io(String),
}

/// A key file that cannot be parsed or a key that cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("bad key file: {0}")]
    BadKeyFile(String),
    #[error("bad public key: {0}")]
    BadPublicKey(String),
    #[error("no randomness available to generate a key: {0}")]
    NoRandomness(String),
}
