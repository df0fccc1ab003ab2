//! `learn train` + `learn eval` end to end on a small canonical dataset written by the test:
//! checkpoints, results.json with every model, the markdown report and the SVG curve.

mod common;

use std::path::Path;
use std::process::Command;

const TOPICS: [&str; 4] = [
    "telescope eyepiece lens",
    "lab safety goggles",
    "pipette tips sterile",
    "digital caliper steel",
];

fn write_dataset(dir: &Path) {
    let mut items = String::new();
    for i in 0..40 {
        items.push_str(&format!(
            "{{\"item_id\":\"i{i}\",\"text\":\"Title: {} model {i}\"}}\n",
            TOPICS[i % 4]
        ));
    }
    std::fs::write(dir.join("items.jsonl"), items).unwrap();
    let mut inter = String::from("user,item,timestamp\n");
    for u in 0..60 {
        for step in 0..6 {
            inter.push_str(&format!(
                "u{u},i{},{}\n",
                (u * 7 + step * 4) % 40 / 4 * 4 + u % 4,
                step * 10
            ));
        }
    }
    std::fs::write(dir.join("interactions.csv"), inter).unwrap();
}

fn learn(args: &[&str], model_dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_learn"))
        .args(args)
        .arg("--model-dir")
        .arg(model_dir)
        .env("LEARN__TOWERS__D_MODEL", "16")
        .env("LEARN__TOWERS__HEADS", "2")
        .env("LEARN__TRAINING__BATCH_SIZE", "16")
        .output()
        .expect("run learn");
    assert!(
        out.status.success(),
        "learn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn train_then_eval_writes_the_report() {
    let Some(model_dir) = common::model_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("tiny");
    std::fs::create_dir(&data).unwrap();
    write_dataset(&data);
    let (out, cache) = (tmp.path().join("run"), tmp.path().join("cache"));
    let (data, out, cache) = (
        data.to_str().unwrap(),
        out.to_str().unwrap(),
        cache.to_str().unwrap(),
    );
    let common = ["--dataset", data, "--out", out, "--cache-dir", cache];
    for model in ["learn", "sasrec"] {
        let args = [
            &["train"][..],
            &common,
            &["--model", model, "--epochs", "2"],
        ]
        .concat();
        learn(&args, &model_dir);
    }
    learn(&[&["eval"][..], &common].concat(), &model_dir);

    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(out).join("results.json")).unwrap(),
    )
    .unwrap();
    for model in ["learn", "sasrec", "content", "popularity"] {
        let masked = &results["models"][model]["evaluation"]["masked"];
        assert_eq!(masked["cases"], 60, "{model}");
        let recall = masked["recall_10"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&recall), "{model}: {recall}");
    }
    assert_eq!(
        results["models"]["learn"]["training"]["curve"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let report = std::fs::read_to_string(Path::new(out).join("report.md")).unwrap();
    assert!(
        report.contains("| learn |") && report.contains("| popularity |"),
        "{report}"
    );
    let svg = std::fs::read_to_string(Path::new(out).join("training.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    let png = std::fs::read(Path::new(out).join("training.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "training.png is a PNG");
}
