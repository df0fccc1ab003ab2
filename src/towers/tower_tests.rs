//! Unit tests of the tower (causal mask, item slot, unit or raw outputs, tied items).

use super::*;
use crate::tensor::max_abs_diff;
use crate::towers::AdapterKind;
use candle_core::DType;

fn spec() -> TowerSpec {
    TowerSpec {
        d_model: 16,
        heads: 2,
        layers: 2,
        out_dim: 8,
        max_len: 6,
        dropout: 0.0,
        attn_dropout: 0.0,
        item_ids: false,
        id_dropout: 0.0,
        pre_ln: true,
        adapter: AdapterKind::Linear,
        whiten: false,
        tied_items: false,
        normalise: true,
        output_head: true,
        init_std: None,
    }
}

/// A content tower over `table` (10 items), pre- or post-LN, and its variables.
fn content_tower(pre_ln: bool, table: &Tensor) -> (VarMap, Tower) {
    let varmap = VarMap::new();
    let tower = Tower::new(
        &TowerSpec { pre_ln, ..spec() },
        TowerInput::Content {
            table: table.clone(),
            trained: vec![true; 10],
        },
        &varmap,
        3,
        &Device::Cpu,
    )
    .unwrap();
    (varmap, tower)
}

#[test]
fn causal_mask_no_future_leakage() {
    let table = Tensor::randn(0f32, 1.0, (10, 5), &Device::Cpu).unwrap();
    for pre_ln in [true, false] {
        let (_, tower) = content_tower(pre_ln, &table);
        let a = Tensor::new(&[[1u32, 2, 3, 4, 5]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[1u32, 2, 3, 9, 0]], &Device::Cpu).unwrap();
        let (oa, ob) = (
            tower.forward(&a, false).unwrap(),
            tower.forward(&b, false).unwrap(),
        );
        let early = (oa.narrow(1, 0, 3).unwrap() - ob.narrow(1, 0, 3).unwrap())
            .unwrap()
            .abs()
            .unwrap();
        assert_eq!(
            early.max_all().unwrap().to_scalar::<f32>().unwrap(),
            0.0,
            "positions 0..3 must not see 3.."
        );
        let later = (oa.narrow(1, 3, 1).unwrap() - ob.narrow(1, 3, 1).unwrap())
            .unwrap()
            .abs()
            .unwrap();
        assert!(
            later.max_all().unwrap().to_scalar::<f32>().unwrap() > 1e-4,
            "position 3 sees its own item"
        );
    }
}

/// An item-ID tower over 10 items.
fn id_tower() -> Tower {
    new_tower(&spec(), TowerInput::Ids { items: 10 }).unwrap()
}

#[test]
fn an_item_is_not_its_own_one_item_history() {
    let tower = id_tower();
    let (user, item) = (
        tower.users(&[&[4]]).unwrap(),
        tower.items(&[4], false).unwrap(),
    );
    let cos = (user * item)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        cos < 0.999,
        "history [4] and item 4 must be different vectors: cos {cos}"
    );
}

#[test]
fn outputs_are_unit_and_users_read_the_last_real_position() {
    let tower = id_tower();
    let users = tower.users(&[&[1, 2], &[3, 4, 5, 6]]).unwrap();
    let alone = tower.users(&[&[1, 2]]).unwrap();
    assert!(
        max_abs_diff(&users.get(0).unwrap(), &alone.get(0).unwrap()) < 1e-6,
        "padding must not change a history's embedding"
    );
    let norms = row_norms_squared(&users);
    assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5));
}

fn row_norms_squared(xs: &Tensor) -> Vec<f32> {
    xs.sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap()
}

/// A tower on the CPU from seed 1 (its variables live as long as the tower's tensors).
fn new_tower(spec: &TowerSpec, input: TowerInput) -> Result<Tower> {
    Tower::new(spec, input, &VarMap::new(), 1, &Device::Cpu)
}

/// A tied item-ID tower over 10 items, with unit or raw outputs, and the ID embeddings of
/// items 3 and 7.
fn tied_id_tower(normalise: bool) -> (Tower, Tensor) {
    let spec = TowerSpec {
        tied_items: true,
        normalise,
        ..spec()
    };
    let tower = new_tower(&spec, TowerInput::Ids { items: 10 }).unwrap();
    let InputLayer::Ids(table) = &tower.input else {
        panic!("an ID tower");
    };
    let ids = Tensor::new(&[3u32, 7], &Device::Cpu).unwrap();
    let embeddings = table.forward(&ids).unwrap();
    (tower, embeddings)
}

#[test]
fn tied_items_read_their_own_id_embedding_through_the_head() {
    let (tower, embeddings) = tied_id_tower(true);
    assert_unit_tied_items(&tower, &embeddings);
}

/// Items 3 and 7 of a tied, unit-output tower are `inputs` through the final norm and the head.
fn assert_unit_tied_items(tower: &Tower, inputs: &Tensor) {
    let norm = tower.final_norm.as_ref().expect("pre-LN has a final norm");
    let manual = l2_normalise(
        &tower
            .out
            .as_ref()
            .unwrap()
            .forward(&norm.forward(inputs).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(max_abs_diff(&tower.items(&[3, 7], false).unwrap(), &manual) < 1e-6);
}

#[test]
fn dot_product_towers_keep_their_norms_and_tied_items_skip_the_final_norm() {
    let (tower, embeddings) = tied_id_tower(false);
    let manual = tower.out.as_ref().unwrap().forward(&embeddings).unwrap();
    assert!(max_abs_diff(&tower.items(&[3, 7], false).unwrap(), &manual) < 1e-6);
    let users = tower.users(&[&[1, 2, 3], &[4]]).unwrap();
    let norms = row_norms_squared(&users);
    assert!(norms.iter().any(|n| (n - 1.0).abs() > 1e-3), "{norms:?}");
}

#[test]
fn tied_content_items_are_the_adapter_projection_through_the_head() {
    let table = Tensor::randn(0f32, 1.0, (10, 5), &Device::Cpu).unwrap();
    let spec = TowerSpec {
        tied_items: true,
        ..spec()
    };
    let input = TowerInput::Content {
        table: table.clone(),
        trained: vec![true; 10],
    };
    let tower = new_tower(&spec, input).unwrap();
    let InputLayer::Content { adapter, .. } = &tower.input else {
        panic!("a content tower");
    };
    let ids = Tensor::new(&[3u32, 7], &Device::Cpu).unwrap();
    let projected = adapter
        .forward(&table.index_select(&ids, 0).unwrap())
        .unwrap();
    assert_unit_tied_items(&tower, &projected);
}

#[test]
fn online_towers_refuse_offline_only_settings_naming_the_key() {
    for (key, spec) in [
        (
            "towers.item_ids",
            TowerSpec {
                item_ids: true,
                ..spec()
            },
        ),
        (
            "towers.normalise",
            TowerSpec {
                normalise: false,
                ..spec()
            },
        ),
    ] {
        let result = new_tower(&spec, TowerInput::Features { dim: 5 });
        let error = result.err().expect("refused").to_string();
        assert!(error.contains(key), "{error}");
    }
}

#[test]
fn anchors_read_the_same_outputs_and_gradients_as_the_whole_pass() {
    let table = Tensor::randn(0f32, 1.0, (10, 5), &Device::Cpu).unwrap();
    let ids = Tensor::new(
        &[
            [1u32, 2, 3, 4, 5, 6],
            [7, 8, 9, 0, 0, 0],
            [3, 3, 1, 2, 8, 9],
        ],
        &Device::Cpu,
    )
    .unwrap();
    // Sparse anchors (rows 0 and 2 at their last positions, row 1 mid-way): the last block
    // runs on them alone.
    let anchors = [4u32, 5, 8, 16, 17];
    for pre_ln in [true, false] {
        let (varmap, tower) = content_tower(pre_ln, &table);
        let ours = tower.forward_anchors(&ids, &anchors, false).unwrap();
        let whole = tower
            .forward(&ids, false)
            .unwrap()
            .reshape((18, 8))
            .unwrap();
        let theirs = whole
            .index_select(&Tensor::new(&anchors, &Device::Cpu).unwrap(), 0)
            .unwrap();
        assert!(max_abs_diff(&ours, &theirs) < 1e-5, "pre_ln {pre_ln}");
        let weights = theirs.cos().unwrap();
        let loss = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap();
        let (a, b) = (
            loss(&ours).backward().unwrap(),
            loss(&theirs).backward().unwrap(),
        );
        for var in varmap.all_vars() {
            let (ga, gb) = (a.get(var.as_tensor()), b.get(var.as_tensor()));
            assert_eq!(
                ga.is_some(),
                gb.is_some(),
                "the same variables get gradients"
            );
            if let (Some(ga), Some(gb)) = (ga, gb) {
                assert!(
                    max_abs_diff(ga, gb) < 1e-5,
                    "pre_ln {pre_ln}: gradient differs"
                );
            }
        }
    }
}

/// SASRec's scoring (`[sasrec]`): no output head and raw dot products — a tied item is its ID
/// embedding itself, a history its last hidden state (d_model wide, not unit).
#[test]
fn headless_towers_score_by_hidden_states_and_raw_id_embeddings() {
    let spec = TowerSpec {
        tied_items: true,
        normalise: false,
        output_head: false,
        pre_ln: false,
        out_dim: 16,
        ..spec()
    };
    let tower = new_tower(&spec, TowerInput::Ids { items: 10 }).unwrap();
    assert!(tower.out.is_none());
    let InputLayer::Ids(table) = &tower.input else {
        panic!("an ID tower");
    };
    let ids = Tensor::new(&[3u32, 7], &Device::Cpu).unwrap();
    let embeddings = table.forward(&ids).unwrap();
    assert!(max_abs_diff(&tower.items(&[3, 7], false).unwrap(), &embeddings) < 1e-7);
    let users = tower.users(&[&[1, 2, 3], &[4]]).unwrap();
    assert_eq!(users.dims(), &[2, 16]);
}

/// `init_std` (RecBole's N(0, σ²)): weights and embedding tables drawn with that spread, biases 0
/// and norm scales 1 unchanged.
#[test]
fn normal_init_draws_weights_with_the_given_spread() {
    let varmap = VarMap::new();
    let spec = TowerSpec {
        init_std: Some(0.02),
        d_model: 64,
        heads: 2,
        out_dim: 64,
        ..spec()
    };
    Tower::new(
        &spec,
        TowerInput::Ids { items: 500 },
        &varmap,
        1,
        &Device::Cpu,
    )
    .unwrap();
    let data = varmap.data().lock().unwrap();
    let values = |name: &str| {
        data[name]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let table = values("item_embeddings.weight");
    let mean = table.iter().sum::<f32>() / table.len() as f32;
    let std = (table.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / table.len() as f32).sqrt();
    assert!(
        mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3,
        "mean {mean}, std {std}"
    );
    assert!(values("out.bias").iter().all(|&b| b == 0.0));
    assert!(values("input_norm.weight").iter().all(|&w| w == 1.0));
}

/// `towers.id_dropout`: in training an occurrence's ID offset is dropped whole (the row reads as
/// content alone) or kept scaled by 1/keep; outside training every offset is there.
#[test]
fn id_dropout_drops_whole_offsets_in_training_only() {
    let table = Tensor::randn(0f32, 1.0, (10, 5), &Device::Cpu).unwrap();
    let varmap = VarMap::new();
    let spec = TowerSpec {
        item_ids: true,
        id_dropout: 0.5,
        ..spec()
    };
    let input = TowerInput::Content {
        table,
        trained: vec![true; 10],
    };
    let tower = Tower::new(&spec, input, &varmap, 1, &Device::Cpu).unwrap();
    let ones = Tensor::ones((10, 16), DType::F32, &Device::Cpu).unwrap();
    varmap.data().lock().unwrap()["id_offsets.weight"]
        .set(&ones)
        .unwrap();
    let ids = Tensor::new(&[[1u32, 2, 3, 4, 5, 6, 7, 8]], &Device::Cpu).unwrap();
    let content = (tower.embed_ids(&ids, false).unwrap() - 1.0).unwrap();
    let offsets = (tower.embed_ids(&ids, true).unwrap() - &content)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let mut seen = [false; 2];
    for row in &offsets {
        let kept = (row[0] - 2.0).abs() < 1e-5;
        assert!(kept || row[0].abs() < 1e-5, "{row:?}");
        assert!(
            row.iter().all(|v| (v - row[0]).abs() < 1e-5),
            "whole rows: {row:?}"
        );
        seen[usize::from(kept)] = true;
    }
    assert_eq!(
        seen,
        [true, true],
        "some offsets dropped, some kept: {offsets:?}"
    );
}
