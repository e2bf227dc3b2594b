//! Embedding storage and the dense scan.
//!
//! Why two copies of each vector: a scan is bound by memory traffic and arithmetic, and 100,000
//! × 384 `f32`s are 154 MB, about 5 ms to stream on one core here. So each vector is also kept
//! quantised to `i8` with its own scale (38 MB), and the scan multiplies those by the quantised
//! query in integers: about 1 ms per 100,000 rows on one core with AVX2. The quantised scores
//! only choose candidates; the caller rescores the best few with the exact `f32` rows, which also
//! answer [`VectorStore::row`].
//!
//! The quantised rows are stored in blocks of [`LANES`] rows, interleaved so that one AVX2
//! multiply-add (`vpmaddwd`) handles two components of eight rows: for each pair of components
//! `(2p, 2p + 1)` a block holds `2 × LANES` bytes, row `j`'s pair at `2j` and `2j + 1`. The
//! compiler's auto-vectoriser does not find this on its own (its best loops measured about 4 ms
//! per 100,000 rows), so on x86-64 the kernel is written with `pulp`'s safe AVX2 wrappers and
//! chosen at run time; elsewhere a portable loop computes the same integers.
//!
//! Rows are kept dense (removal moves the last row into the hole), so a scan never skips gaps.
//! Above [`PARALLEL_MIN_ROWS`] the blocks are split across rayon's threads.

use rayon::prelude::*;

/// Rows per quantised block.
pub(crate) const LANES: usize = 16;

/// Below this many rows one thread scans faster than waking others.
pub(crate) const PARALLEL_MIN_ROWS: usize = 16_384;

pub(crate) struct VectorStore {
    dimensions: usize,
    /// Row-major, `dimensions` values per row.
    rows: Vec<f32>,
    /// The slot each row belongs to.
    row_slot: Vec<u32>,
    /// Blocks of [`Self::block_len`] bytes laid out as the module documentation says. An odd
    /// number of dimensions is padded with a zero component; unused lanes are zero.
    quantised: Vec<i8>,
    /// Per lane of every block: quantised × scale ≈ value. Unused lanes are zero.
    scales: Vec<f32>,
    /// The sum of every row scaled to unit length (in `f64`, so adding and taking away rows
    /// leaves no drift that matters): the mean cosine of a vector with every row in one dot
    /// product ([`Self::mean_cosine`]).
    direction_sum: Vec<f64>,
}

impl VectorStore {
    pub(crate) fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            rows: Vec::new(),
            row_slot: Vec::new(),
            quantised: Vec::new(),
            scales: Vec::new(),
            direction_sum: vec![0.0; dimensions],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.row_slot.len()
    }

    /// Roughly the heap bytes held, for memory budgets.
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.rows.capacity() * size_of::<f32>()
            + self.row_slot.capacity() * size_of::<u32>()
            + self.quantised.capacity()
            + self.scales.capacity() * size_of::<f32>()
            + self.direction_sum.capacity() * size_of::<f64>()
    }

    pub(crate) fn row(&self, row: usize) -> &[f32] {
        &self.rows[row * self.dimensions..(row + 1) * self.dimensions]
    }

    pub(crate) fn slot(&self, row: usize) -> u32 {
        self.row_slot[row]
    }

    /// Appends `vector` (of `dimensions` components, `dimensions > 0`) for `slot`; returns its row.
    pub(crate) fn push(&mut self, slot: u32, vector: &[f32]) -> usize {
        let row = self.len();
        if row.is_multiple_of(LANES) {
            self.quantised
                .resize(self.quantised.len() + self.block_len(), 0);
            self.scales.resize(self.scales.len() + LANES, 0.0);
        }
        self.rows.extend_from_slice(vector);
        self.row_slot.push(slot);
        self.add_direction(row, 1.0);
        let (quantised, scale) = quantise(vector);
        for (d, q) in quantised.into_iter().enumerate() {
            let at = self.at(row, d);
            self.quantised[at] = q;
        }
        self.scales[row] = scale;
        row
    }

    /// Removes `row` by moving the last row into its place. Returns the slot whose vector now
    /// lives at `row`, if one moved.
    pub(crate) fn swap_remove(&mut self, row: usize) -> Option<u32> {
        let last = self.len() - 1;
        let dimensions = self.dimensions;
        self.add_direction(row, -1.0);
        let moved = (row != last).then(|| {
            self.rows
                .copy_within(last * dimensions..(last + 1) * dimensions, row * dimensions);
            self.row_slot[row] = self.row_slot[last];
            for d in 0..dimensions {
                let (from, to) = (self.at(last, d), self.at(row, d));
                self.quantised[to] = self.quantised[from];
            }
            self.scales[row] = self.scales[last];
            self.row_slot[row]
        });
        self.rows.truncate(last * dimensions);
        self.row_slot.truncate(last);
        if last.is_multiple_of(LANES) {
            // The last block is now empty.
            self.quantised.truncate(last / LANES * self.block_len());
            self.scales.truncate(last);
        } else {
            for d in 0..dimensions {
                let at = self.at(last, d);
                self.quantised[at] = 0;
            }
            self.scales[last] = 0.0;
        }
        moved
    }

    /// The mean cosine similarity of `query` (of `dimensions` components) with every row: how
    /// alike it is to what is stored at large. `None` with no rows or a zero query.
    pub(crate) fn mean_cosine(&self, query: &[f32]) -> Option<f32> {
        let norm = f64::from(dot(query, query)).sqrt();
        if self.len() == 0 || norm == 0.0 {
            return None;
        }
        let along: f64 = query
            .iter()
            .zip(&self.direction_sum)
            .map(|(q, sum)| f64::from(*q) * sum)
            .sum();
        Some((along / norm / self.len() as f64) as f32)
    }

    /// Adds `row` scaled to unit length, times `sign`, to [`Self::direction_sum`].
    fn add_direction(&mut self, row: usize, sign: f64) {
        let start = row * self.dimensions;
        let vector = &self.rows[start..start + self.dimensions];
        let norm = f64::from(dot(vector, vector)).sqrt();
        if norm == 0.0 {
            return;
        }
        for (sum, value) in self.direction_sum.iter_mut().zip(vector) {
            *sum += sign * f64::from(*value) / norm;
        }
    }

    /// Approximate dot products of every row with `query` (of `dimensions` components), by row.
    pub(crate) fn approximate_scores(&self, query: &[f32]) -> Vec<f32> {
        let rows = self.len();
        if rows == 0 {
            return Vec::new();
        }
        let (mut query, query_scale) = quantise(query);
        query.resize(self.block_len() / LANES, 0);
        let kernel = Kernel::new(&query);
        let block_len = self.block_len();
        let score_blocks = |scores: &mut [f32], blocks: &[i8], scales: &[f32]| {
            // Integer dots go through a small buffer that stays in L1, a few blocks at a time.
            const BLOCKS_PER_STEP: usize = 64;
            let mut dots = [0i32; BLOCKS_PER_STEP * LANES];
            for ((scores, blocks), scales) in scores
                .chunks_mut(BLOCKS_PER_STEP * LANES)
                .zip(blocks.chunks(BLOCKS_PER_STEP * block_len))
                .zip(scales.chunks(BLOCKS_PER_STEP * LANES))
            {
                let dots = &mut dots[..scores.len()];
                kernel.scan(blocks, dots);
                for ((score, dot), scale) in scores.iter_mut().zip(dots.iter()).zip(scales) {
                    *score = *dot as f32 * scale * query_scale;
                }
            }
        };
        let mut scores = vec![0.0f32; self.scales.len()];
        let threads = rayon::current_num_threads();
        if rows >= PARALLEL_MIN_ROWS && threads > 1 {
            // A few tasks per thread, so one slow thread does not hold up the rest.
            let blocks_per_task = (rows / LANES).div_ceil(threads * 4).max(1);
            scores
                .par_chunks_mut(blocks_per_task * LANES)
                .zip(self.quantised.par_chunks(blocks_per_task * block_len))
                .zip(self.scales.par_chunks(blocks_per_task * LANES))
                .for_each(|((scores, blocks), scales)| score_blocks(scores, blocks, scales));
        } else {
            score_blocks(&mut scores, &self.quantised, &self.scales);
        }
        scores.truncate(rows);
        scores
    }

    /// The exact dot product of `row` with `query`.
    pub(crate) fn exact_score(&self, row: usize, query: &[f32]) -> f32 {
        dot(self.row(row), query)
    }

    /// Bytes per block: `LANES` rows of the components, padded to an even count.
    fn block_len(&self) -> usize {
        self.dimensions.div_ceil(2) * 2 * LANES
    }

    /// Where component `d` of `row` lives in `quantised`.
    fn at(&self, row: usize, d: usize) -> usize {
        (row / LANES) * self.block_len() + (d / 2) * 2 * LANES + (row % LANES) * 2 + d % 2
    }
}

/// `values` quantised to -127..=127 (never -128, so two products always fit an `i16` sum) and
/// the scale that maps them back.
fn quantise(values: &[f32]) -> (Vec<i8>, f32) {
    let max = values.iter().fold(0.0f32, |max, v| max.max(v.abs()));
    if max <= 0.0 {
        return (vec![0; values.len()], 0.0);
    }
    let scale = max / 127.0;
    let quantised = values
        .iter()
        .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (quantised, scale)
}

/// The integer dot products of a quantised query (padded to an even length) with whole blocks.
struct Kernel<'q> {
    query: &'q [i8],
    #[cfg(target_arch = "x86_64")]
    avx2: Option<(pulp::x86::V3, Vec<i32>)>,
}

impl<'q> Kernel<'q> {
    fn new(query: &'q [i8]) -> Self {
        Self {
            query,
            #[cfg(target_arch = "x86_64")]
            avx2: pulp::x86::V3::try_new().map(|simd| (simd, avx2::query_pairs(query))),
        }
    }

    /// `dots[r]` = the dot product of row `r` of `blocks` with the query.
    fn scan(&self, blocks: &[i8], dots: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some((simd, pairs)) = &self.avx2 {
            simd.vectorize(avx2::Scan {
                simd: *simd,
                blocks,
                query_pairs: pairs,
                dots,
            });
            return;
        }
        scan_portable(self.query, blocks, dots);
    }
}

fn scan_portable(query: &[i8], blocks: &[i8], dots: &mut [i32]) {
    let (query_pairs, _) = query.as_chunks::<2>();
    let block_len = query.len() * LANES;
    for (dots, block) in dots
        .chunks_exact_mut(LANES)
        .zip(blocks.chunks_exact(block_len))
    {
        let mut sums = [0i32; LANES];
        let (rows, _) = block.as_chunks::<{ 2 * LANES }>();
        for (row, [q0, q1]) in rows.iter().zip(query_pairs) {
            let (q0, q1) = (i32::from(*q0), i32::from(*q1));
            let (pairs, _) = row.as_chunks::<2>();
            for (sum, [a, b]) in sums.iter_mut().zip(pairs) {
                *sum += i32::from(*a) * q0 + i32::from(*b) * q1;
            }
        }
        dots.copy_from_slice(&sums);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use pulp::{cast, i8x16, i16x16};

    use super::LANES;

    /// Each pair of query components packed as two `i16`s in an `i32`, ready to broadcast.
    pub(super) fn query_pairs(query: &[i8]) -> Vec<i32> {
        let (pairs, _) = query.as_chunks::<2>();
        pairs
            .iter()
            .map(|[q0, q1]| (i32::from(*q0) & 0xFFFF) | (i32::from(*q1) << 16))
            .collect()
    }

    pub(super) struct Scan<'a> {
        pub(super) simd: V3,
        pub(super) blocks: &'a [i8],
        pub(super) query_pairs: &'a [i32],
        pub(super) dots: &'a mut [i32],
    }

    impl pulp::NullaryFnOnce for Scan<'_> {
        type Output = ();

        // Must be inlined into `V3::vectorize` to be compiled with AVX2 enabled.
        #[inline(always)]
        fn call(self) {
            let Self {
                simd,
                blocks,
                query_pairs,
                dots,
            } = self;
            let block_len = query_pairs.len() * 2 * LANES;
            for (dots, block) in dots
                .chunks_exact_mut(LANES)
                .zip(blocks.chunks_exact(block_len))
            {
                // Rows 0..8 and 8..16 of the block, eight i32 sums each.
                let mut low = simd.splat_i32x8(0);
                let mut high = simd.splat_i32x8(0);
                let (rows, _) = block.as_chunks::<{ 2 * LANES }>();
                for (row, &pair) in rows.iter().zip(query_pairs) {
                    let q: i16x16 = cast(simd.splat_i32x8(pair));
                    let (halves, _) = row.as_chunks::<LANES>();
                    let a: i8x16 = cast(halves[0]);
                    let b: i8x16 = cast(halves[1]);
                    let a = simd.convert_i8x16_to_i16x16(a);
                    let b = simd.convert_i8x16_to_i16x16(b);
                    low = simd
                        .wrapping_add_i32x8(low, simd.multiply_wrapping_add_adjacent_i16x16(a, q));
                    high = simd
                        .wrapping_add_i32x8(high, simd.multiply_wrapping_add_adjacent_i16x16(b, q));
                }
                let low: [i32; 8] = cast(low);
                let high: [i32; 8] = cast(high);
                dots[..8].copy_from_slice(&low);
                dots[8..].copy_from_slice(&high);
            }
        }
    }
}

/// Exact dot product; sixteen running sums let the vectoriser work without reassociating floats.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 16];
    let mut a_chunks = a.chunks_exact(16);
    let mut b_chunks = b.chunks_exact(16);
    for (a, b) in (&mut a_chunks).zip(&mut b_chunks) {
        for ((sum, x), y) in sums.iter_mut().zip(a).zip(b) {
            *sum += x * y;
        }
    }
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(vectors: &[&[f32]]) -> VectorStore {
        let mut store = VectorStore::new(vectors[0].len());
        for (slot, v) in vectors.iter().enumerate() {
            store.push(slot as u32, v);
        }
        store
    }

    #[test]
    fn kernels_agree_with_the_definition() {
        let mut seed = 1u64;
        let mut random = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5
        };
        for dimensions in [1, 7, 384] {
            let mut s = VectorStore::new(dimensions);
            // Extremes first: -127 × -127 in both components of a pair must not overflow.
            s.push(0, &vec![-1.0; dimensions]);
            for slot in 1..40 {
                let v: Vec<f32> = (0..dimensions).map(|_| random()).collect();
                s.push(slot, &v);
            }
            for query in [
                vec![-1.0; dimensions],
                (0..dimensions).map(|_| random()).collect(),
            ] {
                let (mut q, _) = quantise(&query);
                q.resize(s.block_len() / LANES, 0);
                let expected: Vec<i32> = (0..s.scales.len())
                    .map(|row| {
                        (0..dimensions)
                            .map(|d| {
                                let value = if row < s.len() {
                                    s.quantised[s.at(row, d)]
                                } else {
                                    0
                                };
                                i32::from(value) * i32::from(q[d])
                            })
                            .sum()
                    })
                    .collect();
                let mut portable = vec![0; s.scales.len()];
                scan_portable(&q, &s.quantised, &mut portable);
                assert_eq!(portable, expected, "{dimensions} dimensions");
                let mut chosen = vec![0; s.scales.len()];
                Kernel::new(&q).scan(&s.quantised, &mut chosen);
                assert_eq!(chosen, expected, "{dimensions} dimensions");
            }
            assert_eq!(
                s.approximate_scores(&vec![-1.0; dimensions])[0],
                (127 * 127 * dimensions) as f32 * (1.0 / 127.0) * (1.0 / 127.0),
            );
        }
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let expected: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expected);
        assert_eq!(dot(&[], &[]), 0.0);
    }

    #[test]
    fn approximate_scores_are_close_to_exact() {
        let s = store(&[
            &[0.6, 0.8, 0.0],
            &[0.0, 0.0, 1.0],
            &[-1.0, 0.0, 0.0],
            &[0.0; 3],
        ]);
        let query = [0.8, 0.6, 0.0];
        let approx = s.approximate_scores(&query);
        let exact: Vec<f32> = (0..4).map(|r| s.exact_score(r, &query)).collect();
        assert_eq!(approx.len(), 4);
        for (a, e) in approx.iter().zip(&exact) {
            assert!((a - e).abs() < 0.02, "{approx:?} vs {exact:?}");
        }
        assert!(s.approximate_scores(&[0.0; 3]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn mean_cosine_is_the_average_over_the_rows_held() {
        let vectors: [&[f32]; 4] = [&[3.0, 0.0], &[0.0, 2.0], &[1.0, 1.0], &[-1.0, 0.0]];
        let mut s = store(&vectors);
        let cosine = |a: &[f32], b: &[f32]| dot(a, b) / (dot(a, a) * dot(b, b)).sqrt();
        let query = [2.0, 1.0];
        let expected = |rows: &[&[f32]]| {
            rows.iter().map(|row| cosine(&query, row)).sum::<f32>() / rows.len() as f32
        };
        let close = |a: Option<f32>, b: f32| a.is_some_and(|a| (a - b).abs() < 1e-6);
        assert!(close(s.mean_cosine(&query), expected(&vectors)));
        // Row 1 goes (the last row moves into its place): the mean is over the rest only.
        s.swap_remove(1);
        assert!(close(
            s.mean_cosine(&query),
            expected(&[vectors[0], vectors[2], vectors[3]])
        ));
        assert_eq!(s.mean_cosine(&[0.0, 0.0]), None, "a zero query");
        for _ in 0..3 {
            s.swap_remove(0);
        }
        assert_eq!(s.mean_cosine(&query), None, "no rows");
    }

    #[test]
    fn swap_remove_moves_the_last_row_and_clears_its_lane() {
        // 17 rows: two blocks, the second with one used lane.
        let vectors: Vec<Vec<f32>> = (0..17).map(|i| vec![i as f32 + 1.0, 1.0]).collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let mut s = store(&refs);
        assert_eq!(s.swap_remove(3), Some(16));
        assert_eq!(s.row(3), &[17.0, 1.0]);
        assert_eq!(s.slot(3), 16);
        assert_eq!(s.len(), 16);
        assert_eq!(s.quantised.len(), 2 * LANES, "the empty block is dropped");
        let scores = s.approximate_scores(&[1.0, 0.0]);
        assert!((scores[3] - 17.0).abs() < 0.2, "{scores:?}");
        assert_eq!(
            s.swap_remove(15),
            None,
            "removing the last row moves nothing"
        );
        assert_eq!(s.len(), 15);
        assert_eq!(s.scales[15], 0.0);
        assert_eq!(&s.quantised[30..32], &[0, 0]);
    }
}
