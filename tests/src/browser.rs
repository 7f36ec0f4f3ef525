//! A real browser (Debian's headless chromium, driven by playwright-core): the driver paying on
//! a hosted payment page (`tests/browser/pay.mjs`), reading a price or payment page
//! (`tests/browser/read.mjs`), reading the receipt from the return page
//! (`tests/browser/receipt.mjs`), and the operator reading a session in the
//! Temporal Web UI (`tests/browser/temporal-ui.mjs`).

use std::path::Path;
use std::process::Command;

use anyhow::ensure;
use serde_json::Value;

/// Runs `tests/browser/pay.mjs` (headless chromium via playwright-core); its JSON answer.
pub fn pay_in_browser(url: &str, card: &str) -> anyhow::Result<Value> {
    run_script("pay.mjs", &[url, card])
}

/// Runs `tests/browser/read.mjs`: opens `url` and answers what a driver reads there (the price
/// page's lines with their figures, the checkout page's custom text lines) as JSON.
pub fn read_page(url: &str) -> anyhow::Result<Value> {
    run_script("read.mjs", &[url])
}

/// Runs `tests/browser/receipt.mjs`: opens a session's payment return page `url`, follows its
/// receipt link and reads the receipt; its JSON answer (`state`, `receipt_url`, `pdf_url`,
/// `fields` by element id, `lines`).
pub fn read_receipt(url: &str) -> anyhow::Result<Value> {
    run_script("receipt.mjs", &[url])
}

/// Runs `tests/browser/temporal-ui.mjs`: opens `url` (a page of the Temporal Web UI) and reads
/// it as `views`, each a tab to open (`""`: the page as it opened) and the strings its text must
/// come to hold (waits up to 30 s a view), with a full-page screenshot of each (`screenshot`,
/// then `<stem>-<n>.png`); its JSON answer (`shots`, `found`, `missing`, `text`).
pub fn temporal_ui_page(
    url: &str,
    screenshot: &Path,
    views: &[(&str, Vec<String>)],
) -> anyhow::Result<Value> {
    let shot = screenshot.display().to_string();
    let mut args = vec![url, shot.as_str()];
    for (tab, expected) in views {
        if !tab.is_empty() {
            args.extend(["--tab", tab]);
        }
        args.extend(expected.iter().map(String::as_str));
    }
    run_script("temporal-ui.mjs", &args)
}

/// Runs `tests/browser/<script>` with node and Debian's chromium; its JSON answer.
fn run_script(script: &str, args: &[&str]) -> anyhow::Result<Value> {
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
        .arg(dir.join(script))
        .args(args)
        .env("CHROMIUM", &chromium)
        .output()?;
    ensure!(
        out.status.success(),
        "browser script {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}
