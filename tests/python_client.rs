//! The backend's Python client (examples/python) runs the smoke checklist against
//! `eventyay-bbb dev`. Needs grpcio, grpcio-tools and grpcio-status: `EVENTYAY_BBB_PYTHON` names
//! an interpreter that has them (CI makes a virtualenv), else `python3` is tried. Outside CI a
//! missing package skips the test, loudly; in CI it fails it.

use std::{path::PathBuf, process::Command};

fn python() -> Option<String> {
    let python = std::env::var("EVENTYAY_BBB_PYTHON").unwrap_or_else(|_| "python3".into());
    let ready = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools, grpc_status"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{python} lacks grpcio/grpcio-tools/grpcio-status in CI (see .ci/run)");
    }
    eprintln!(
        "\n*** SKIPPED: {python} lacks grpcio, grpcio-tools or grpcio-status; \
         `pip install -r examples/python/requirements.txt` to run the Python client's smoke test ***\n"
    );
    None
}

#[test]
fn the_python_client_passes_the_smoke_checklist_against_dev() {
    let Some(python) = python() else { return };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/python");
    let generated = Command::new(&python)
        .arg("generate.py")
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(generated.success(), "generate.py failed");
    let smoke = Command::new(&python)
        .arg("smoke.py")
        .arg(env!("CARGO_BIN_EXE_eventyay-bbb"))
        .current_dir(&dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&smoke.stdout);
    assert!(
        smoke.status.success() && stdout.contains("smoke checklist passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&smoke.stderr)
    );
}
