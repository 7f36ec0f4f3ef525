//! The driver's browser: `tests/browser/pay.mjs` pays on a hosted payment page in headless
//! chromium (Debian's, driven by playwright-core).

use std::path::Path;
use std::process::Command;

use anyhow::ensure;
use serde_json::Value;

/// Runs `tests/browser/pay.mjs` (headless chromium via playwright-core); its JSON answer.
pub fn pay_in_browser(url: &str, card: &str) -> anyhow::Result<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    ensure!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/test (or `npm ci --prefix tests/browser`)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    ensure!(
        Path::new(&chromium).exists(),
        "{chromium} not found: run scripts/test (it installs Debian's chromium)"
    );
    let out = Command::new("node")
        .arg(dir.join("pay.mjs"))
        .args([url, card])
        .env("CHROMIUM", &chromium)
        .output()?;
    ensure!(
        out.status.success(),
        "browser script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}
