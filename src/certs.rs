//! Certificates and keys as PEM text: parse a chain, read the leaf, match a key, fingerprint.
