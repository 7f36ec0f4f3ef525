//! `chargelink price` as a user runs it: real files in, JSON out, clear errors and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn conformance(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/ocpi-tariffs")
        .join(case)
        .join(file)
}

fn price(tariff: &Path, cdr: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chargelink"))
        .arg("price")
        .arg("--tariff")
        .arg(tariff)
        .arg("--cdr")
        .arg(cdr)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn prices_a_cdr_with_ocpi_total_names() {
    let out = price(
        &conformance("simple_3hour_5parking", "tariff.json"),
        &conformance("simple_3hour_5parking", "cdr1.json"),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
    assert_eq!(num(&json["total_cost"]["excl_vat"]), "11.25");
    assert_eq!(num(&json["total_cost"]["incl_vat"]), "12.75");
    for total in [
        "total_energy_cost",
        "total_time_cost",
        "total_parking_cost",
        "total_fixed_cost",
    ] {
        assert!(
            json[total]["excl_vat"].is_string() || json[total]["excl_vat"].is_number(),
            "{total} missing: {json}"
        );
    }
    assert_eq!(num(&json["total_parking_cost"]["incl_vat"]), "4.5");
}

#[test]
fn bad_json_names_the_field_and_fails() {
    let dir = std::env::temp_dir().join(format!("chargelink-price-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("tariff.json");
    std::fs::write(&bad, r#"{"currency":"EUR","elements":[{"price_components":[{"type":"FOO","price":1,"step_size":1}]}]}"#).unwrap();
    let out = price(&bad, &conformance("simple_025kwh", "cdr1.json"), &[]);
    assert!(!out.status.success(), "an invalid tariff must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("elements[0].price_components[0].type"),
        "the error names the field: {err}"
    );

    let out = price(
        &conformance("simple_025kwh", "tariff.json"),
        &conformance("simple_025kwh", "cdr1.json"),
        &["--time-zone", "Mars/Olympus"],
    );
    assert!(!out.status.success(), "an unknown time zone must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));
}
