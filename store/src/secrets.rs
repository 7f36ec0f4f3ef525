//! Secrets are stored only as hashes. API keys are long random tokens, so an unsalted SHA-256
//! is enough to look them up; station keys are short (OCPP limits them to 20 bytes), so they get
//! a per-station salt.

use rand::Rng;
use sha2::{Digest, Sha256};

/// A new random secret: `prefix` + 32 hex characters (128 bits).
pub fn generate(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::rng().random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// SHA-256 of `secret`, hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Salted SHA-256 of a station key, hex.
pub fn hash_salted(salt: &str, secret: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{secret}").as_bytes()))
}

/// Compares two hex digests in constant time.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_same_secret() {
        let key = generate("ck_");
        assert!(key.starts_with("ck_") && key.len() == 35);
        assert!(same_digest(&hash(&key), &hash(&key)));
        assert!(!same_digest(&hash(&key), &hash("ck_other")));
        assert_ne!(hash_salted("a", "k"), hash_salted("b", "k"));
    }
}
