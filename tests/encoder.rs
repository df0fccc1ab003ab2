//! The frozen encoders on real weights against the independent onnxruntime reference
//! (`scripts/encoder-fixtures.sh` wrote `tests/fixtures/encoder/<model>.json`): every text's
//! embedding has cosine ≥ 0.9999 with the reference, for the three families (MiniLM,
//! nomic-embed-text-v1.5 and SmolLM2-135M, the last two from GGUF) and both backends (native
//! kernels, candle); a text embedded alone equals the same text inside a length-sorted batch;
//! identical texts are embedded once (cache).

mod common;

use std::path::{Path, PathBuf};

use learn_stream::config::{Config, EncoderBackend, EncoderConfig};
use learn_stream::encode::ContentEncoder;

#[derive(serde::Deserialize)]
struct Fixture {
    /// The task prefix the reference put before every text (the model's own, `encoder.prefix = "auto"`).
    #[serde(default)]
    prefix: String,
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn fixture(name: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/encoder")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn encoder(model: &Path, backend: EncoderBackend, max_batch: usize) -> ContentEncoder {
    let config = EncoderConfig {
        model_dir: model.to_path_buf(),
        backend,
        max_batch,
        threads: 2,
        cache_entries: 0,
        ..Config::load(None).unwrap().encoder
    };
    ContentEncoder::from_config(&config).expect("model loads")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn matches_reference(model: &Path, fixture_name: &str, dim: usize) {
    let reference = fixture(fixture_name);
    for backend in [EncoderBackend::Native, EncoderBackend::Candle] {
        let encoder = encoder(model, backend, 16);
        assert_eq!(encoder.dim(), dim);
        assert_eq!(
            encoder.prefix(),
            reference.prefix,
            "the model's own task prefix"
        );
        let vectors = encoder.embed(&reference.texts).unwrap();
        let mut worst = (1.0f64, "");
        for ((text, got), want) in reference.texts.iter().zip(&vectors).zip(&reference.vectors) {
            let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{backend:?} {text}: norm {norm}");
            let c = cosine(got, want);
            if c < worst.0 {
                worst = (c, text);
            }
        }
        eprintln!(
            "{fixture_name} {backend:?}: worst cosine {:.9} ({:?})",
            worst.0, worst.1
        );
        assert!(
            worst.0 >= 0.9999,
            "{backend:?}: cosine {} for {:?}",
            worst.0,
            worst.1
        );
    }
}

fn alone_and_batched_agree(model: &Path, fixture_name: &str) {
    let texts = fixture(fixture_name).texts;
    let encoder = encoder(model, EncoderBackend::Native, 64);
    let batched = encoder.embed(&texts).unwrap();
    for (text, together) in texts.iter().zip(&batched).step_by(5) {
        let alone = &encoder.embed(std::slice::from_ref(text)).unwrap()[0];
        let diff = alone
            .iter()
            .zip(together)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{text}: alone vs batch differ by {diff}");
    }
}

fn decoder_model() -> Option<PathBuf> {
    common::decoder_model()
}

#[test]
fn minilm_matches_onnxruntime_reference() {
    let Some(dir) = common::model_dir() else {
        return;
    };
    matches_reference(&dir, "all-MiniLM-L6-v2.json", 384);
}

#[test]
fn smollm2_from_gguf_matches_onnxruntime_reference() {
    let Some(model) = decoder_model() else { return };
    matches_reference(&model, "SmolLM2-135M-Instruct.Q4_1.json", 576);
}

#[test]
fn nomic_from_gguf_matches_onnxruntime_reference() {
    let Some(model) = common::nomic_model() else {
        return;
    };
    matches_reference(&model, "nomic-embed-text-v1.5.f16.json", 768);
}

#[test]
fn alone_and_batched_agree_for_every_family() {
    if let Some(dir) = common::model_dir() {
        alone_and_batched_agree(&dir, "all-MiniLM-L6-v2.json");
    }
    if let Some(model) = common::nomic_model() {
        alone_and_batched_agree(&model, "nomic-embed-text-v1.5.f16.json");
    }
    if let Some(model) = decoder_model() {
        alone_and_batched_agree(&model, "SmolLM2-135M-Instruct.Q4_1.json");
    }
}

#[test]
fn identical_texts_are_embedded_once_and_meaning_is_kept() {
    let Some(dir) = common::model_dir() else {
        return;
    };
    let config = EncoderConfig {
        model_dir: dir,
        ..Config::load(None).unwrap().encoder
    };
    let encoder = ContentEncoder::from_config(&config).unwrap();
    let texts: Vec<String> = [
        "Title: Digital caliper. Brand: Neiko. Category: Measuring Tools",
        "Title: Kitten",
        "Title: Digital caliper. Brand: Neiko. Category: Measuring Tools",
        "Title: Stainless steel thermometer probe",
    ]
    .map(String::from)
    .to_vec();
    let first = encoder.embed(&texts).unwrap();
    assert_eq!(first[0], first[2]);
    assert_eq!(encoder.cached_texts(), 3, "three distinct texts");
    let again = encoder.embed(&texts[..2]).unwrap();
    assert_eq!(again[0], first[0]);
    assert_eq!(encoder.cached_texts(), 3, "nothing new embedded");
    // Related product texts are closer to each other than to an unrelated one.
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&first[0], &first[3]) > dot(&first[0], &first[1]));
}

/// A NomicBERT as a Hugging Face directory (`model_type: nomic_bert`, the upstream tensor names,
/// here a small random one with MiniLM's WordPiece `tokenizer.json`): both backends load it and
/// agree — the native kernels against candle-transformers' `nomic_bert`.
#[test]
fn nomic_from_a_hugging_face_directory_runs_on_both_backends_alike() {
    let Some(minilm) = common::model_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (vocab, h, inner, layers) = (30522, 32, 64, 2);
    let config = serde_json::json!({
        "model_type": "nomic_bert", "vocab_size": vocab, "n_embd": h, "n_head": 4, "n_layer": layers,
        "n_inner": inner, "n_positions": 512, "layer_norm_epsilon": 1e-12, "rotary_emb_base": 1000.0
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::fs::copy(
        minilm.join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let device = candle_core::Device::Cpu;
    let random = |shape: &[usize]| candle_core::Tensor::randn(0f32, 0.1, shape, &device).unwrap();
    let mut tensors = std::collections::HashMap::new();
    tensors.insert(
        "embeddings.word_embeddings.weight".to_string(),
        random(&[vocab, h]),
    );
    tensors.insert(
        "embeddings.token_type_embeddings.weight".into(),
        random(&[2, h]),
    );
    for norm in ["emb_ln".to_string()]
        .into_iter()
        .chain((0..layers).flat_map(|l| {
            [
                format!("encoder.layers.{l}.norm1"),
                format!("encoder.layers.{l}.norm2"),
            ]
        }))
    {
        tensors.insert(format!("{norm}.weight"), (random(&[h]) + 1.0).unwrap());
        tensors.insert(format!("{norm}.bias"), random(&[h]));
    }
    for l in 0..layers {
        let p = format!("encoder.layers.{l}");
        tensors.insert(format!("{p}.attn.Wqkv.weight"), random(&[3 * h, h]));
        tensors.insert(format!("{p}.attn.out_proj.weight"), random(&[h, h]));
        tensors.insert(format!("{p}.mlp.fc11.weight"), random(&[inner, h]));
        tensors.insert(format!("{p}.mlp.fc12.weight"), random(&[inner, h]));
        tensors.insert(format!("{p}.mlp.fc2.weight"), random(&[h, inner]));
    }
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let texts = fixture("all-MiniLM-L6-v2.json").texts;
    let native = encoder(dir.path(), EncoderBackend::Native, 16);
    assert_eq!((native.dim(), native.prefix()), (h, "clustering: "));
    let native = native.embed(&texts).unwrap();
    let candle = encoder(dir.path(), EncoderBackend::Candle, 16)
        .embed(&texts)
        .unwrap();
    for ((text, a), b) in texts.iter().zip(&native).zip(&candle) {
        assert!(cosine(a, b) > 0.9999, "{text}: {}", cosine(a, b));
    }
}
