//! A small-batch matrix product for AVX-512 CPUs, `y (+)= x·W`: the weights are packed once, at
//! load, into panels of 32 output columns (`k × 32` contiguous floats), and a register tile of up
//! to 14 token rows × 32 columns (28 zmm accumulators) streams one panel per step with one FMA per
//! broadcast input — nothing is packed per call, so a single upload (≈25 tokens) runs at the
//! FMA units' pace instead of paying the general `gemm`'s per-call packing and 64-row tiles.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output columns per panel: two zmm registers.
pub const WIDTH: usize = 32;
/// Most token rows in one register tile (2·14 accumulators + 2 weight registers + 1 broadcast ≤ 32).
const TILE_ROWS: usize = 14;
/// Token rows whose inputs are reused across all panels before moving on (x block stays in L2).
const BLOCK_ROWS: usize = 96;

/// `weight` (`outputs × inputs`, row-major, as Hugging Face stores it) as `ceil(outputs/32)`
/// panels of `inputs × 32`: panel `p` holds output columns `32p..32p+32`, zero-padded past the last.
pub fn pack(weight: &[f32], outputs: usize, inputs: usize) -> Vec<f32> {
    let panels = outputs.div_ceil(WIDTH);
    let mut packed = vec![0f32; panels * inputs * WIDTH];
    for (o, row) in weight.chunks_exact(inputs).enumerate() {
        let (p, c) = (o / WIDTH, o % WIDTH);
        for (k, w) in row.iter().enumerate() {
            packed[(p * inputs + k) * WIDTH + c] = *w;
        }
    }
    packed
}

/// Whether this CPU runs the panel kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[allow(unreachable_code)]
    false
}

/// Rows `rows` × panels `panels` of `y (m × outputs)` ← `y`·[read_dst] + `x`·W.
///
/// # Safety
/// The CPU has AVX-512F ([`available`]); `x` holds the rows (`inputs` wide), `y` the rows
/// (`outputs` wide), `packed` comes from [`pack`] with the same shape; no other thread writes
/// this block of `y`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn product(
    x: *const f32,
    y: *mut f32,
    packed: &[f32],
    inputs: usize,
    outputs: usize,
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    read_dst: bool,
) {
    let mut block = rows.start;
    while block < rows.end {
        let block_end = (block + BLOCK_ROWS).min(rows.end);
        for p in panels.clone() {
            let panel = packed.as_ptr().add(p * inputs * WIDTH);
            let cols = WIDTH.min(outputs - p * WIDTH);
            // While the first tile streams this panel, the next one is fetched towards L2.
            let next = if p + 1 < panels.end {
                panel.add(inputs * WIDTH)
            } else {
                std::ptr::null()
            };
            // Tiles of balanced height: 25 rows are 13 + 12, not 14 + 11 or 12 + 12 + 1.
            let tiles = (block_end - block).div_ceil(TILE_ROWS);
            let height = (block_end - block).div_ceil(tiles);
            let mut r = block;
            while r < block_end {
                let n = height.min(block_end - r);
                let prefetch = if r == block { next } else { std::ptr::null() };
                let xr = x.add(r * inputs);
                let yr = y.add(r * outputs + p * WIDTH);
                macro_rules! dispatch {
                    ($($rows:literal)*) => {
                        match n {
                            $($rows => tile::<$rows>(xr, inputs, panel, prefetch, yr, outputs, cols, read_dst),)*
                            _ => unreachable!(),
                        }
                    };
                }
                dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
                r += n;
            }
        }
        block = block_end;
    }
}

/// One `R × 32` register tile over the whole inner dimension; `prefetch` (if not null) is a panel
/// to pull into L2 meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize>(
    x: *const f32,
    inputs: usize,
    panel: *const f32,
    prefetch: *const f32,
    y: *mut f32,
    outputs: usize,
    cols: usize,
    read_dst: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for k in 0..inputs {
        if !prefetch.is_null() {
            _mm_prefetch::<_MM_HINT_T1>(prefetch.add(k * WIDTH) as *const i8);
            _mm_prefetch::<_MM_HINT_T1>(prefetch.add(k * WIDTH + 16) as *const i8);
        }
        let w0 = _mm512_loadu_ps(panel.add(k * WIDTH));
        let w1 = _mm512_loadu_ps(panel.add(k * WIDTH + 16));
        for (r, a) in acc.iter_mut().enumerate() {
            let v = _mm512_set1_ps(*x.add(r * inputs + k));
            a[0] = _mm512_fmadd_ps(v, w0, a[0]);
            a[1] = _mm512_fmadd_ps(v, w1, a[1]);
        }
    }
    let mask = |from: usize| -> __mmask16 {
        match cols.saturating_sub(from) {
            0 => 0,
            c if c >= 16 => 0xFFFF,
            c => (1u16 << c) - 1,
        }
    };
    let (m0, m1) = (mask(0), mask(16));
    for (r, a) in acc.iter().enumerate() {
        let dst = y.add(r * outputs);
        let (mut v0, mut v1) = (a[0], a[1]);
        if read_dst {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, dst));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, dst.add(16)));
        }
        _mm512_mask_storeu_ps(dst, m0, v0);
        _mm512_mask_storeu_ps(dst.add(16), m1, v1);
    }
}
