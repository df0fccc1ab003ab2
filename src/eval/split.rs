//! Leave-one-out: each user's last item is the test target, the second-to-last the validation
//! target, everything before is training data. Users with fewer than 3 items only train.

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub user: usize,
    /// Items before the target, oldest first.
    pub history: Vec<u32>,
    pub target: u32,
}

#[derive(Debug, Clone)]
pub struct Split {
    pub train: Vec<Vec<u32>>,
    pub valid: Vec<Case>,
    pub test: Vec<Case>,
}

pub fn leave_one_out(sequences: &[Vec<u32>]) -> Split {
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (user, seq) in sequences.iter().enumerate() {
        let n = seq.len();
        if n < 3 {
            train.push(seq.clone());
            continue;
        }
        train.push(seq[..n - 2].to_vec());
        valid.push(Case {
            user,
            history: seq[..n - 2].to_vec(),
            target: seq[n - 2],
        });
        test.push(Case {
            user,
            history: seq[..n - 1].to_vec(),
            target: seq[n - 1],
        });
    }
    Split { train, valid, test }
}

/// A random `fraction` of the items (seeded), to be removed from training entirely.
pub fn cold_items(item_count: usize, fraction: f64, seed: u64) -> HashSet<u32> {
    use rand::{seq::index::sample, SeedableRng};
    let count = ((item_count as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xC01D);
    sample(&mut rng, item_count, count)
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

/// Training sequences with the `cold` items removed entirely.
pub fn without_items(train: &[Vec<u32>], cold: &HashSet<u32>) -> Vec<Vec<u32>> {
    train
        .iter()
        .map(|s| s.iter().copied().filter(|i| !cold.contains(i)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_is_test_second_to_last_is_validation() {
        let split = leave_one_out(&[vec![1, 2, 3, 4], vec![5, 6]]);
        assert_eq!(split.train, [vec![1, 2], vec![5, 6]]);
        assert_eq!(
            split.valid,
            [Case {
                user: 0,
                history: vec![1, 2],
                target: 3
            }]
        );
        assert_eq!(
            split.test,
            [Case {
                user: 0,
                history: vec![1, 2, 3],
                target: 4
            }]
        );
        let cold: HashSet<u32> = [2].into();
        assert_eq!(without_items(&split.train, &cold), [vec![1], vec![5, 6]]);
    }
}
