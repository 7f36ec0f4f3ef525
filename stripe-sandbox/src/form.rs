//! Form-encoded parameters as Stripe receives them: flat keys with serde_qs-style nesting
//! (`payment_intent_data[capture_method]`, `line_items[0][quantity]`).

use std::collections::BTreeMap;

use crate::error::ApiError;

/// The parameters of one request, by their full (bracketed) key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `a=1&b[c]=2`; repeated keys keep the last value, as Stripe does.
    pub(crate) fn parse(raw: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A required parameter.
    pub(crate) fn require(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| ApiError::missing(key))
    }

    /// An optional integer parameter.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::invalid_param(
                        "parameter_invalid_integer",
                        key,
                        format!("Invalid integer: {v}"),
                    )
                })
            })
            .transpose()
    }

    /// The entries of a hash parameter: `metadata[k]=v` gives `k -> v` for prefix `metadata`.
    pub(crate) fn map(&self, prefix: &str) -> BTreeMap<String, String> {
        let open = format!("{prefix}[");
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let inner = k.strip_prefix(&open)?.strip_suffix(']')?;
                (!inner.contains('[')).then(|| (inner.to_owned(), v.clone()))
            })
            .collect()
    }

    /// The full keys that start with `prefix` (e.g. every `custom_text[…]` key).
    pub(crate) fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .keys()
            .map(String::as_str)
            .filter(move |k| k.starts_with(prefix))
    }

    /// The indices used by an array parameter (`line_items[0][..]`, `line_items[1][..]`).
    pub(crate) fn indices(&self, prefix: &str) -> Vec<usize> {
        let open = format!("{prefix}[");
        let mut found: Vec<usize> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&open)?.split(']').next()?.parse().ok())
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// A canonical text of the parameters, for comparing an idempotent retry with the original.
    pub(crate) fn fingerprint(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The parameters as a JSON object (for the request log).
    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_are_read_like_serde_qs_writes_them() {
        let p = Params::parse(
            b"mode=payment&metadata%5Bsession_id%5D=ses_1&line_items%5B0%5D%5Bquantity%5D=1&line_items%5B1%5D%5Bquantity%5D=2&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=eur",
        );
        assert_eq!(p.get("mode"), Some("payment"));
        assert_eq!(
            p.map("metadata").get("session_id").map(String::as_str),
            Some("ses_1")
        );
        assert_eq!(p.indices("line_items"), vec![0, 1]);
        assert_eq!(p.get("line_items[0][price_data][currency]"), Some("eur"));
        assert!(p.map("line_items").is_empty());
    }

    #[test]
    fn fingerprint_ignores_parameter_order() {
        assert_eq!(
            Params::parse(b"a=1&b=2").fingerprint(),
            Params::parse(b"b=2&a=1").fingerprint()
        );
        assert_ne!(
            Params::parse(b"a=1").fingerprint(),
            Params::parse(b"a=2").fingerprint()
        );
    }

    #[test]
    fn bad_integers_are_a_validation_error() {
        let e = Params::parse(b"amount_to_capture=ten")
            .int("amount_to_capture")
            .unwrap_err();
        assert_eq!(
            (e.status, e.code, e.stored),
            (400, Some("parameter_invalid_integer"), false)
        );
    }
}
