//! PDFs checked the way a reader shows them: rendered by poppler (`pdftoppm`, `pdftotext`, from
//! Debian's poppler-utils, which `scripts/test` installs).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

/// A PDF page rendered to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The PNG written.
    pub png: PathBuf,
    /// Its size in pixels (at 72 dpi: the page size in points).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixels of the first page darker than light grey (ink: text and lines).
    pub ink: usize,
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}: install poppler-utils (scripts/test does)"))?;
    ensure!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

/// Renders the first page of `pdf` at 72 dpi to `<stem>.png` with `pdftoppm`, and counts its
/// ink on a greyscale rendering.
pub fn render_first_page(pdf: &Path, stem: &Path) -> anyhow::Result<Rendered> {
    let pdf_arg = pdf.display().to_string();
    let stem_arg = stem.display().to_string();
    let common = ["-r", "72", "-f", "1", "-l", "1", "-singlefile"];
    run(
        "pdftoppm",
        &[&common[..], &["-png", &pdf_arg, &stem_arg]].concat(),
    )?;
    let png = stem.with_extension("png");
    let bytes = std::fs::read(&png).with_context(|| format!("reading {}", png.display()))?;
    ensure!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is no PNG",
        png.display()
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (width, height) = (be(16), be(20));
    // The same page as a binary PGM (P5) on stdout: easy to count without an image decoder.
    let pgm = run("pdftoppm", &[&common[..], &["-gray", &pdf_arg]].concat())?;
    Ok(Rendered {
        png,
        width,
        height,
        ink: ink(&pgm).context("pdftoppm's PGM")?,
    })
}

/// Pixels darker than 200 of 255 in a binary PGM (`P5 <w> <h> <max>` then one byte a pixel).
fn ink(pgm: &[u8]) -> Option<usize> {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while pgm.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !pgm.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        fields.push(std::str::from_utf8(&pgm[start..at]).ok()?);
    }
    if fields[0] != "P5" {
        return None;
    }
    let pixels = pgm.get(at + 1..)?;
    Some(pixels.iter().filter(|&&p| p < 200).count())
}

/// The text of `pdf` as `pdftotext -layout` reads it.
pub fn text(pdf: &Path) -> anyhow::Result<String> {
    let out = run("pdftotext", &["-layout", &pdf.display().to_string(), "-"])?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
