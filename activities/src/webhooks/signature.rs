//! `chargelink-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the
//! scheme Stripe uses: receivers check the HMAC in constant time and reject stale timestamps.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "chargelink-signature";

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a header value: any `v1` matches and `t` is within `tolerance_secs` of `now`.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    signatures
        .iter()
        .any(|s| mac(secret, t, body).verify_slice(s).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_reject_tampering_and_staleness() {
        let header = sign("whsec_x", 1_000, b"{\"a\":1}");
        assert!(verify("whsec_x", &header, b"{\"a\":1}", 1_010, 300));
        assert!(
            !verify("whsec_x", &header, b"{\"a\":2}", 1_010, 300),
            "tampered body"
        );
        assert!(
            !verify("whsec_y", &header, b"{\"a\":1}", 1_010, 300),
            "other secret"
        );
        assert!(
            !verify("whsec_x", &header, b"{\"a\":1}", 2_000, 300),
            "stale"
        );
        assert!(!verify("whsec_x", "v1=00", b"{}", 0, 300), "no timestamp");
    }
}
