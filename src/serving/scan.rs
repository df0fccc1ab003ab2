//! The scoring kernels of the aligned index: f32 and int8 dot products, written so the compiler
//! vectorises them, the int8 quantisation of a unit vector, and a running top-n that keeps the best
//! rows of a scan without sorting or storing every score.

/// Dot product in eight independent lanes, which the compiler vectorises (a single running sum
/// cannot be reordered, so it stays scalar).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Integer dot product of two int8 codes (exact: |sum| ≤ 127² · len fits an i32 for any width
/// the towers use), sixteen lanes for the vectoriser.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 = a16
        .remainder()
        .iter()
        .zip(b16.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    for (x, y) in a16.zip(b16) {
        for i in 0..16 {
            lanes[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// Symmetric int8 code of `v`: `v ≈ code · scale`, scale = max |v_i| / 127 (one per row).
pub fn quantise(v: &[f32], code: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    code.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// The best `n` (row, score) pairs of a stream, by score: a buffer of up to 2n, cut back to the
/// best n (and the entry threshold raised) whenever it fills, so most rows cost one comparison.
pub struct TopN {
    n: usize,
    threshold: f32,
    buffer: Vec<(u32, f32)>,
}

impl TopN {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            threshold: f32::NEG_INFINITY,
            buffer: Vec::with_capacity(2 * n.max(1)),
        }
    }

    #[inline]
    pub fn push(&mut self, row: u32, score: f32) {
        if score <= self.threshold || self.n == 0 {
            return;
        }
        self.buffer.push((row, score));
        if self.buffer.len() == 2 * self.n {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.buffer.len() > self.n {
            self.buffer
                .select_nth_unstable_by(self.n - 1, |a, b| b.1.total_cmp(&a.1));
            self.buffer.truncate(self.n);
            self.threshold = self.buffer[self.n - 1].1;
        }
    }

    /// The best n, best first.
    pub fn into_sorted(mut self) -> Vec<(u32, f32)> {
        self.cut();
        self.buffer.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_match_the_plain_sums() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
        let (x, y): (Vec<i8>, Vec<i8>) = (0..37i32)
            .map(|i| ((127 - i * 7) as i8, (i - 18) as i8))
            .unzip();
        let plain: i32 = x
            .iter()
            .zip(&y)
            .map(|(&p, &q)| i32::from(p) * i32::from(q))
            .sum();
        assert_eq!(dot_i8(&x, &y), plain);
    }

    #[test]
    fn a_code_reconstructs_its_vector_within_half_a_step() {
        let v = [0.5f32, -0.25, 0.0, 0.8, -0.8];
        let mut code = Vec::new();
        let scale = quantise(&v, &mut code);
        assert_eq!(code[3], 127);
        assert_eq!(code[4], -127);
        for (x, c) in v.iter().zip(&code) {
            assert!((x - f32::from(*c) * scale).abs() <= scale / 2.0 + 1e-7);
        }
    }

    #[test]
    fn top_n_keeps_the_best_in_order() {
        let mut top = TopN::new(3);
        for (row, score) in [5.0, 1.0, 9.0, 3.0, 7.0, 9.5, 2.0, 8.0]
            .into_iter()
            .enumerate()
        {
            top.push(row as u32, score);
        }
        assert_eq!(top.into_sorted(), [(5, 9.5), (2, 9.0), (7, 8.0)]);
        let mut few = TopN::new(10);
        few.push(0, 1.0);
        assert_eq!(few.into_sorted(), [(0, 1.0)]);
    }
}
