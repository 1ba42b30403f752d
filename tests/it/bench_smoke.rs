//! `eventyay-bbb bench` runs end to end: two cheap scenarios in `--quick` mode finish, exit 0
//! and print their figures with ratios to a baseline measured in the same run. Behaviour only:
//! no timing is asserted (the figures of a debug build on a busy machine mean nothing).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");

fn bench(extra: &[&str]) -> String {
    let output = Command::new(BIN)
        .args([
            "bench",
            "--quick",
            "--only",
            "burst,recordings",
            "--latency",
            "0ms",
        ])
        .args(extra)
        .env("RUST_LOG", "error")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn quick_bench_prints_tables_with_ratios() {
    let report = bench(&[]);
    assert!(report.contains("== Burst:"), "{report}");
    assert!(report.contains("== ListRecordings"), "{report}");
    assert!(report.contains("÷ baseline"), "{report}");
    // A ratio is printed as a number followed by ×, next to the baseline it came from.
    assert!(
        report
            .lines()
            .any(|l| l.contains("BBB create calls") && l.contains('×')),
        "{report}"
    );
    assert!(report.contains("Peak RSS"), "{report}");
}

#[test]
fn quick_bench_json_carries_baselines_and_ratios() {
    let report: serde_json::Value =
        serde_json::from_str(&bench(&["--json"])).expect("--json prints JSON");
    assert_eq!(report["quick"], true);
    assert!(report["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    let sections = report["sections"].as_array().expect("sections");
    let scenarios: Vec<&str> = sections
        .iter()
        .filter_map(|s| s["scenario"].as_str())
        .collect();
    assert_eq!(scenarios, ["burst", "recordings"]);
    for section in sections {
        let figures = section["figures"].as_array().expect("figures");
        let with_ratio = figures.iter().find(|f| f["ratio"].is_number());
        let figure = with_ratio.unwrap_or_else(|| panic!("a ratio in {section}"));
        assert!(figure["baseline"].is_number(), "{figure}");
    }
}
