//! Checkpoints: stopping, restoring and continuing gives bit-for-bit the weights and optimizer
//! state of a run that never stopped; writes are atomic and only the last K are kept; a diverging
//! (non-finite) step changes nothing; the whitening is fitted on a lineage's first step, refitted
//! only as configured, and carried by checkpoints.

use candle_core::{Device, Tensor};
use learn_stream::checkpoint::{self, CheckpointDir, Manifest};
use learn_stream::config::Config;
use learn_stream::train::online::{OnlineBatch, OnlineTrainer};

const DIM: usize = 12;

fn config() -> Config {
    let mut config = Config::load(None).unwrap();
    config.towers.d_model = 16;
    config.towers.heads = 2;
    config.towers.out_dim = 8;
    config.towers.max_len = 10;
    config
}

/// Deterministic batches: 6 users over a 20-item table, sequences shifting with the step.
fn batch(step: usize) -> OnlineBatch {
    let values: Vec<f32> = (0..20 * DIM)
        .map(|i| ((i * 7 + step) % 13) as f32 / 13.0 - 0.5)
        .collect();
    OnlineBatch {
        table: Tensor::from_vec(values, (20, DIM), &Device::Cpu).unwrap(),
        sequences: (0..6)
            .map(|u| {
                (0..8)
                    .map(|j| ((u * 3 + j * 5 + step) % 20) as u32)
                    .collect()
            })
            .collect(),
        fresh: Vec::new(),
        drawn: vec![3, 11, 17],
        negatives: config().training.negatives,
        catalogue_items: 20,
        log_share: Some((0..20).map(|i| -(1.0 + i as f32 / 10.0)).collect()),
    }
}

fn trainer(config: &Config) -> OnlineTrainer {
    OnlineTrainer::new(&config.towers, DIM, &config.training, 3).unwrap()
}

fn manifest(config: &Config, version: u64) -> Manifest {
    Manifest {
        version,
        created_ms: 0,
        step: 0,
        config_hash: "test".into(),
        model_id: "test-encoder".into(),
        content_dim: DIM,
        towers: config.towers.clone(),
        loss: None,
        offsets: Default::default(),
        state_sha256: None,
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Weights, then first moments, then second moments.
fn state(trainer: &OnlineTrainer, config: &Config) -> Vec<Vec<f32>> {
    let c = trainer.checkpoint(manifest(config, 0)).unwrap();
    let moments = c.optimizer.expect("a trainer's checkpoint has its moments");
    c.weights
        .iter()
        .map(|(_, t)| t)
        .chain(&moments.m)
        .chain(&moments.v)
        .map(values)
        .collect()
}

#[test]
fn the_store_gets_the_weights_alone_checksummed_and_a_restored_trainer_starts_a_fresh_optimizer() {
    let config = config();
    let mut t = trainer(&config);
    for step in 0..5 {
        t.step(&batch(step), 64).unwrap();
    }
    let full = t.checkpoint(manifest(&config, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = CheckpointDir::new(dir.path(), 2).write(&full).unwrap();
    let (manifest_bytes, published) = checkpoint::published(&full).unwrap();
    assert!(
        published.len() * 2 < written.state.len(),
        "weights alone: {} of {} bytes",
        published.len(),
        written.state.len()
    );
    let read = checkpoint::from_bytes(&manifest_bytes, &published).unwrap();
    assert!(read.optimizer.is_none());
    assert_eq!(read.manifest.step, 5);
    assert_eq!(read.weights.len(), full.weights.len());
    for ((a, x), (b, y)) in read.weights.iter().zip(&full.weights) {
        assert_eq!(a, b);
        assert_eq!(values(x), values(y));
    }
    // The checksum covers the published bytes: one flipped bit is refused.
    let mut flipped = published.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(checkpoint::from_bytes(&manifest_bytes, &flipped).is_err());
    // Restored from it: these weights, zero moments, step 0 (AdamW's bias correction starts over).
    let mut next = trainer(&config);
    next.restore(&read).unwrap();
    assert_eq!(next.steps(), 0);
    let restored = state(&next, &config);
    let n = full.weights.len();
    assert_eq!(restored[0], values(&full.weights[0].1));
    assert!(restored[n..].iter().flatten().all(|&x| x == 0.0));
    assert!(next
        .step(&batch(5), 64)
        .unwrap()
        .is_some_and(|s| s.loss.is_finite()));
}

#[test]
fn restore_and_continue_is_bit_exact() {
    let config = config();
    let mut straight = trainer(&config);
    for step in 0..10 {
        straight.step(&batch(step), 64).unwrap().expect("a loss");
    }

    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDir::new(dir.path(), 2);
    let mut first = trainer(&config);
    for step in 0..5 {
        first.step(&batch(step), 64).unwrap();
    }
    checkpoints
        .write(&first.checkpoint(manifest(&config, 1)).unwrap())
        .unwrap();
    drop(first);

    let restored = checkpoints.latest().unwrap().expect("a checkpoint");
    assert_eq!(restored.manifest.step, 5);
    let mut second = trainer(&config);
    second.restore(&restored).unwrap();
    for step in 5..10 {
        second.step(&batch(step), 64).unwrap();
    }
    assert_eq!(second.steps(), 10);
    let (a, b) = (state(&straight, &config), state(&second, &config));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "weights or optimizer moments differ after restore"
        );
    }
    assert!(
        state(&trainer(&config), &config)[0] != a[0],
        "training moved the weights"
    );
}

#[test]
fn keeps_the_last_k_and_leaves_no_temporaries() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDir::new(dir.path(), 2);
    let t = trainer(&config);
    for version in 1..=4 {
        checkpoints
            .write(&t.checkpoint(manifest(&config, version)).unwrap())
            .unwrap();
    }
    let versions: Vec<u64> = checkpoints
        .list()
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(versions, [3, 4]);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "temporaries left: {names:?}"
    );
    let latest = checkpoint::read_manifest(&dir.path().join("v00000004")).unwrap();
    assert_eq!(latest.version, 4);
    let bytes = std::fs::read(dir.path().join("v00000004/state.safetensors")).unwrap();
    let manifest = serde_json::to_vec(&latest).unwrap();
    let from_bytes = checkpoint::from_bytes(&manifest, &bytes).unwrap();
    assert_eq!(from_bytes.weights.len(), t.weights().unwrap().len());
}

#[test]
fn a_non_finite_step_is_refused_and_changes_nothing() {
    let config = config();
    let mut trainer = trainer(&config);
    trainer.step(&batch(0), 64).unwrap();
    let before = state(&trainer, &config);
    // A NaN in the content table (a corrupt vector) makes the loss NaN.
    let mut poisoned = batch(1);
    let mut values = poisoned
        .table
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    values[5] = f32::NAN;
    poisoned.table = Tensor::from_vec(values, (20, DIM), &Device::Cpu).unwrap();
    let err = trainer.step(&poisoned, 64).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    assert_eq!(
        state(&trainer, &config),
        before,
        "weights and moments unchanged"
    );
    assert_eq!(trainer.steps(), 1);
}

#[test]
fn a_truncated_newest_checkpoint_falls_back_to_the_previous_one() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDir::new(dir.path(), 5);
    let t = trainer(&config);
    for version in 1..=2 {
        checkpoints
            .write(&t.checkpoint(manifest(&config, version)).unwrap())
            .unwrap();
    }
    let newest = dir.path().join("v00000002");
    let manifest = checkpoint::read_manifest(&newest).unwrap();
    assert_eq!(manifest.state_sha256.as_ref().map(String::len), Some(64));
    // Power loss mid-write of the data blocks: the state file is cut short.
    let state = std::fs::read(newest.join("state.safetensors")).unwrap();
    std::fs::write(newest.join("state.safetensors"), &state[..state.len() / 2]).unwrap();
    let err = checkpoint::read(&newest).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    // The store path verifies too (what followers load).
    let published = std::fs::read(newest.join("manifest.json")).unwrap();
    assert!(checkpoint::from_bytes(&published, &state[..state.len() / 2]).is_err());
    let restored = checkpoints.latest().unwrap().expect("an older checkpoint");
    assert_eq!(restored.manifest.version, 1);
}

#[test]
fn whitening_is_fitted_on_the_first_step_never_trained_and_travels_with_the_weights() {
    let mut config = config();
    config.towers.whiten = true;
    let whiten = |t: &OnlineTrainer| -> Vec<Vec<f32>> {
        t.weights()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.starts_with("whiten."))
            .map(|(_, w)| values(w))
            .collect()
    };
    let mut t = trainer(&config);
    let fresh = whiten(&t);
    assert_eq!(fresh.len(), 3, "whiten.items, whiten.matrix, whiten.mean");
    assert_eq!(fresh[0], vec![0.0], "not fitted before the first step");
    t.step(&batch(0), 64).unwrap().expect("a loss");
    let fitted = whiten(&t);
    assert_eq!(fitted[0], vec![20.0], "fitted on the 20-item catalogue");
    assert_ne!(fitted[1], fresh[1], "no longer the identity");
    for step in 1..5 {
        t.step(&batch(step), 64).unwrap();
    }
    assert_eq!(whiten(&t), fitted, "later steps and tables change nothing");

    // Published weights carry it: a restored trainer does not refit on its own first batch.
    let full = t.checkpoint(manifest(&config, 1)).unwrap();
    let (manifest_bytes, published) = checkpoint::published(&full).unwrap();
    let mut next = trainer(&config);
    next.restore(&checkpoint::from_bytes(&manifest_bytes, &published).unwrap())
        .unwrap();
    next.step(&batch(7), 64).unwrap();
    assert_eq!(whiten(&next), fitted);
}

/// Items the lineage's whitening was fitted on (`whiten.items`; 0: not yet).
fn whitened_on(trainer: &OnlineTrainer) -> usize {
    let weights = trainer.weights().unwrap();
    let (_, items) = weights.iter().find(|(n, _)| n == "whiten.items").unwrap();
    items.to_vec1::<f32>().unwrap()[0] as usize
}

/// `batch(step)` over a catalogue of `items` (the first 20 rows as before, the rest new).
fn grown(step: usize, items: usize) -> OnlineBatch {
    let values: Vec<f32> = (0..items * DIM)
        .map(|i| ((i * 5 + i / DIM + step) % 17) as f32 / 17.0 - 0.5)
        .collect();
    OnlineBatch {
        table: Tensor::from_vec(values, (items, DIM), &Device::Cpu).unwrap(),
        catalogue_items: items,
        log_share: None,
        ..batch(step)
    }
}

#[test]
fn whitening_is_fitted_on_the_first_step_and_refitted_only_as_the_catalogue_doubles() {
    let config = config();
    assert!(config.towers.whiten && config.online.whiten_refit_until == 0);
    // The default: fitted once, on the first step's catalogue, whatever it grows to.
    let mut once = trainer(&config);
    assert_eq!(whitened_on(&once), 0);
    once.step(&batch(0), usize::MAX).unwrap().unwrap();
    assert_eq!(whitened_on(&once), 20);
    once.step(&grown(1, 80), usize::MAX).unwrap().unwrap();
    assert_eq!(whitened_on(&once), 20, "kept as the catalogue grows");
    // Refits on each doubling, until a fit has seen `until` items.
    let mut refit = trainer(&config);
    refit.refit_whitening_until(60);
    refit.step(&batch(0), usize::MAX).unwrap().unwrap();
    refit.step(&grown(1, 39), usize::MAX).unwrap().unwrap();
    assert_eq!(whitened_on(&refit), 20, "not yet doubled");
    refit.step(&grown(2, 40), usize::MAX).unwrap().unwrap();
    assert_eq!(whitened_on(&refit), 40, "doubled: refitted");
    refit.step(&grown(3, 80), usize::MAX).unwrap().unwrap();
    assert_eq!(whitened_on(&refit), 80, "40 < 60: refitted again");
    refit.step(&grown(4, 200), usize::MAX).unwrap().unwrap();
    assert_eq!(
        whitened_on(&refit),
        80,
        "a fit has seen 60: kept from now on"
    );
    // A checkpoint carries the statistics: a restored trainer has the same fit.
    let mut restored = trainer(&config);
    let saved = refit.checkpoint(manifest(&config, 1)).unwrap();
    restored.restore(&saved).unwrap();
    assert_eq!(whitened_on(&restored), 80);
}
