//! The Python package (`clients/python`): its pytest suite, run against this build of
//! `eventyay-bbb` and its emulator, on the package as pip installs it.
//!
//! The interpreter is `EVENTYAY_BBB_PYTHON` (CI makes a virtualenv from
//! `clients/python/requirements-dev.txt`), else `python3`. It needs pip, grpcio, grpcio-status,
//! protobuf, pytest and setuptools. Outside CI a missing one skips this test, loudly; in CI
//! (`CI=true`) it fails it.
//!
//! The package is installed offline from a copy of the source (so pip's build leaves nothing in
//! the tree) into a temporary directory, and pytest runs with only that directory added to
//! `PYTHONPATH`: what is tested is the installed copy, not `clients/python/src`.
//!
//! The TLS tests get certificates made here for this run (`EVENTYAY_BBB_TEST_TLS_DIR`).

use crate::common::temp_dir;
use eventyay_bbb::tls::ThrowawayCa;
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

const MODULES: &[&str] = &[
    "pip",
    "grpc",
    "grpc_status",
    "google.protobuf",
    "pytest",
    "setuptools",
];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn python() -> Option<String> {
    let python = std::env::var("EVENTYAY_BBB_PYTHON").unwrap_or_else(|_| "python3".into());
    let missing: Vec<&str> = MODULES
        .iter()
        .copied()
        .filter(|module| {
            !Command::new(&python)
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return Some(python);
    }
    if in_ci() {
        panic!(
            "{python} lacks {} in CI: install clients/python/requirements-dev.txt (see .ci/run) \
             or point EVENTYAY_BBB_PYTHON at an interpreter that has it",
            missing.join(", ")
        );
    }
    crate::common::skip_loudly(&format!(
        "{python} lacks {}; `pip install -r clients/python/requirements-dev.txt` \
         (or set EVENTYAY_BBB_PYTHON) to run the Python package's tests",
        missing.join(", ")
    ));
    None
}

/// Copies the package's source, leaving out what builds and test runs leave behind.
fn copy_source(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if matches!(
            name.as_ref(),
            "build" | "dist" | "__pycache__" | ".pytest_cache" | "tests"
        ) || name.ends_with(".egg-info")
        {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_source(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A CA, a certificate for 127.0.0.1 it signed with its key, and an unrelated CA.
fn write_test_certificates(dir: &Path) {
    fs::create_dir(dir).unwrap();
    let ca = ThrowawayCa::new("eventyay-bbb Python tests CA").unwrap();
    let server = ca.issue(&["127.0.0.1", "localhost"]).unwrap();
    let other = ThrowawayCa::new("eventyay-bbb unrelated CA").unwrap();
    fs::write(dir.join("ca.pem"), ca.certificate_pem()).unwrap();
    fs::write(dir.join("tls.crt"), &server.cert_pem).unwrap();
    fs::write(dir.join("tls.key"), server.key_pem.expose()).unwrap();
    fs::write(dir.join("other-ca.pem"), other.certificate_pem()).unwrap();
}

#[test]
fn the_python_package_passes_its_tests_against_the_service() {
    let Some(python) = python() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let package = root.join("clients/python");
    let scratch = temp_dir();
    let source = scratch.path().join("source");
    let installed = scratch.path().join("site");
    copy_source(&package, &source);
    let certs = scratch.path().join("certs");
    write_test_certificates(&certs);

    let pip = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args([
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
        ])
        .arg(&installed)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        pip.status.success(),
        "pip could not install clients/python:\n{}\n{}",
        String::from_utf8_lossy(&pip.stdout),
        String::from_utf8_lossy(&pip.stderr)
    );

    let pytest = Command::new(&python)
        .args(["-m", "pytest"])
        .arg(package.join("tests"))
        .args(["-p", "no:cacheprovider", "-q", "-rs"])
        .current_dir(scratch.path())
        .env("PYTHONPATH", &installed)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("EVENTYAY_BBB_BIN", env!("CARGO_BIN_EXE_eventyay-bbb"))
        .env("EVENTYAY_BBB_TEST_TLS_DIR", &certs)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&pytest.stdout);
    let stderr = String::from_utf8_lossy(&pytest.stderr);
    assert!(
        pytest.status.success(),
        "pytest failed:\n{stdout}\n{stderr}"
    );
    // Print the summary (skips included) where `cargo nextest run --no-capture` shows it.
    println!("{stdout}");
}
