//! The frozen encoder on the real all-MiniLM-L6-v2 weights: unit-length vectors, a text embedded
//! alone equals the same text inside a padded, length-sorted batch, and meaning is preserved.

mod common;

use learn_stream::encode::ContentEncoder;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn alone_and_batched_agree_and_vectors_are_unit_length() {
    let Some(dir) = common::model_dir() else {
        return;
    };
    let encoder = ContentEncoder::load(&dir, "minilm".into(), 256, 3).expect("model loads");
    assert_eq!(encoder.dim(), 384);
    let texts: Vec<String> = [
        "Title: Digital caliper. Brand: Neiko. Category: Measuring Tools",
        "Title: Kitten",
        "Title: Lab safety goggles, anti-fog, indirect vent. Brand: Uvex. Category: Safety. Tags: lab, eyewear, protective equipment",
        "Title: Stainless steel thermometer probe",
        "Title: Organic chemistry molecular model kit with 240 pieces. Category: Science Education",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let batched = encoder.embed(&texts).unwrap();
    for (text, together) in texts.iter().zip(&batched) {
        let alone = &encoder.embed(std::slice::from_ref(text)).unwrap()[0];
        let norm: f32 = together.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        let max_diff = alone
            .iter()
            .zip(together)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            max_diff < 1e-5,
            "{text}: alone vs batch differ by {max_diff}"
        );
    }
    // Related product texts are closer to each other than to an unrelated one.
    let near = cosine(&batched[0], &batched[3]);
    let far = cosine(&batched[0], &batched[1]);
    assert!(
        near > far,
        "caliper~thermometer {near} should exceed caliper~kitten {far}"
    );
}
