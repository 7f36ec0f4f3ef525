//! The Python `ocpp` 2.1.0 charge point used as an independent implementation.

use std::path::{Path, PathBuf};

use anyhow::bail;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/cp.py")
}

/// The OCPP 2.0.1 charge point script (the package's `ocpp.v201`).
pub fn script_201() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/cp201.py")
}

/// The venv's interpreter, checked to have `ocpp==2.1.0` and `websockets==17.4`. Fails (never
/// skips) when they are missing.
pub fn interpreter() -> anyhow::Result<PathBuf> {
    let python = std::env::var_os("CHARGELINK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/venv/bin/python"));
    let check = std::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('ocpp'), m.version('websockets'))",
        ])
        .output();
    match check {
        Ok(out) if out.status.success() => {
            let versions = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if versions != "2.1.0 17.4" {
                bail!(
                    "{} has ocpp/websockets {versions}, expected 2.1.0 17.4: run scripts/python-deps",
                    python.display()
                );
            }
            Ok(python)
        }
        _ => bail!(
            "Python deps for the interop test are missing ({} with ocpp==2.1.0 and \
             websockets==17.4): run scripts/python-deps (or set CHARGELINK_PYTHON)",
            python.display()
        ),
    }
}
