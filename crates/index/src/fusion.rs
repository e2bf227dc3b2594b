//! Fusing the lexical and the dense ranking into one.
//!
//! * [`fuse_relative`] (what search uses): each list's scores rescaled to 0..=1 and summed with
//!   weights. It keeps how much better the first hits are than the rest, which rank alone throws
//!   away; on LoCoMo it beat reciprocal-rank fusion by about 0.02–0.08 recall@10 (see
//!   `crates/cli/benches/locomo.rs`).
//! * [`fuse_rrf`]: reciprocal-rank fusion, by rank alone, kept for comparison.

use std::collections::HashMap;

use membrain_memory::MemoryId;

use crate::Scored;
use crate::top_k::Ranked;

/// One fused hit with the 1-based rank it had in each input list (`None` where it was absent),
/// so a caller can say which rankings found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub id: MemoryId,
    pub score: f32,
    pub ranks: Vec<Option<usize>>,
}

/// Relative-score fusion of a lexical and a dense list (each best first): lexical scores divided
/// by the best one (BM25 has no fixed floor: a weak match stays weak), dense scores min-max
/// rescaled within their list (cosines of one model crowd into a narrow band), then
/// `lexical_weight · lexical + (1 − lexical_weight) · dense`, a hit missing from a list counting
/// 0 there. Returns at most `limit`, best first; equal scores put the newer id first.
pub fn fuse_relative(
    lexical: &[Scored],
    dense: &[Scored],
    lexical_weight: f32,
    limit: usize,
) -> Vec<Scored> {
    let mut fused: HashMap<MemoryId, f32> = HashMap::new();
    let best = lexical.iter().map(|s| s.score).fold(0.0f32, f32::max);
    if best > 0.0 {
        for hit in lexical {
            let entry = fused.entry(hit.id).or_default();
            *entry = entry.max(lexical_weight * hit.score / best);
        }
    }
    let high = dense
        .iter()
        .map(|s| s.score)
        .fold(f32::NEG_INFINITY, f32::max);
    let low = dense.iter().map(|s| s.score).fold(f32::INFINITY, f32::min);
    let span = high - low;
    let dense_weight = 1.0 - lexical_weight;
    let mut seen = std::collections::HashSet::new();
    for hit in dense {
        if !seen.insert(hit.id) {
            continue;
        }
        // One hit, or all equal: each is as good as the best.
        let scaled = if span > f32::EPSILON {
            (hit.score - low) / span
        } else {
            1.0
        };
        *fused.entry(hit.id).or_default() += dense_weight * scaled;
    }
    best_scored(fused, limit)
}

/// `(1 − weight) · first + weight · second` per id, an id missing from a list counting 0 there:
/// two rankings on one scale (such as two [`fuse_relative`] lists) mixed. Returns at most
/// `limit`, best first; equal scores put the newer id first.
pub fn blend(first: &[Scored], second: &[Scored], weight: f32, limit: usize) -> Vec<Scored> {
    let mut scores: HashMap<MemoryId, f32> = HashMap::new();
    for hit in first {
        *scores.entry(hit.id).or_default() += (1.0 - weight) * hit.score;
    }
    for hit in second {
        *scores.entry(hit.id).or_default() += weight * hit.score;
    }
    best_scored(scores, limit)
}

/// The best `limit` of scored ids, best first; equal scores put the newer id first: the order
/// every ranking here answers in.
pub fn best_scored(scores: impl IntoIterator<Item = (MemoryId, f32)>, limit: usize) -> Vec<Scored> {
    let ranked: Vec<Scored> = scores
        .into_iter()
        .map(|(id, score)| Scored { id, score })
        .collect();
    best_first(ranked, limit, |s| (s.score, s.id))
}

/// The best `limit` of `hits`, best first; equal scores put the newer id first.
fn best_first<T>(mut hits: Vec<T>, limit: usize, key: impl Fn(&T) -> (f32, MemoryId)) -> Vec<T> {
    hits.sort_by(|a, b| {
        let ranked = |hit: &T| {
            let (score, tie) = key(hit);
            Ranked { score, tie }
        };
        ranked(b).cmp(&ranked(a))
    });
    hits.truncate(limit);
    hits
}

/// Reciprocal-rank fusion of ranked lists (each best first) with weights:
/// `score(d) = Σ weight_i / (rank_constant + rank_i(d))`, ranks counted from 1, summed over the
/// lists that contain `d`. Returns at most `limit`, best first; equal scores put the newer id
/// first. An id listed twice in one list counts once, at its better rank.
pub fn fuse_rrf(lists: &[(&[Scored], f32)], rank_constant: f32, limit: usize) -> Vec<Scored> {
    fuse_rrf_with_ranks(lists, rank_constant, limit)
        .into_iter()
        .map(|fused| Scored {
            id: fused.id,
            score: fused.score,
        })
        .collect()
}

/// [`fuse_rrf`], keeping each hit's rank in every list.
pub fn fuse_rrf_with_ranks(
    lists: &[(&[Scored], f32)],
    rank_constant: f32,
    limit: usize,
) -> Vec<Fused> {
    let mut position: HashMap<MemoryId, usize> = HashMap::new();
    let mut fused: Vec<Fused> = Vec::new();
    for (list_index, (list, weight)) in lists.iter().enumerate() {
        for (rank, hit) in (1..).zip(list.iter()) {
            let at = *position.entry(hit.id).or_insert_with(|| {
                fused.push(Fused {
                    id: hit.id,
                    score: 0.0,
                    ranks: vec![None; lists.len()],
                });
                fused.len() - 1
            });
            let entry = &mut fused[at];
            if entry.ranks[list_index].is_none() {
                entry.ranks[list_index] = Some(rank);
                entry.score += weight / (rank_constant + rank as f32);
            }
        }
    }
    best_first(fused, limit, |f| (f.score, f.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_fusion_rescales_each_list() {
        let scored = |pairs: &[(u64, f32)]| -> Vec<Scored> {
            pairs
                .iter()
                .map(|&(n, score)| Scored { id: id(n), score })
                .collect()
        };
        // Lexical 1 (best) and 2 (half); dense 2 (best), 3, 1 (worst of the list).
        let lexical = scored(&[(1, 4.0), (2, 2.0)]);
        let dense = scored(&[(2, 0.8), (3, 0.6), (1, 0.4)]);
        let fused = fuse_relative(&lexical, &dense, 0.6, 10);
        let got: Vec<(MemoryId, f32)> = fused.iter().map(|s| (s.id, s.score)).collect();
        let want = [(id(2), 0.6 * 0.5 + 0.4), (id(1), 0.6), (id(3), 0.4 * 0.5)];
        assert_eq!(got.len(), want.len());
        for ((gid, gscore), (wid, wscore)) in got.iter().zip(want) {
            assert_eq!(*gid, wid);
            assert!((gscore - wscore).abs() < 1e-6, "{gscore} vs {wscore}");
        }
        // Limits, empty lists, a one-hit dense list.
        assert_eq!(fuse_relative(&lexical, &dense, 0.6, 1).len(), 1);
        assert!(fuse_relative(&[], &[], 0.6, 5).is_empty());
        let only = fuse_relative(&[], &scored(&[(7, 0.3)]), 0.6, 5);
        assert_eq!(only[0].id, id(7));
        assert!((only[0].score - 0.4).abs() < 1e-6);
        // Equal scores: newer id first.
        let tie = fuse_relative(&scored(&[(1, 1.0), (2, 1.0)]), &[], 0.5, 5);
        assert_eq!(tie[0].id, id(2));
    }

    fn id(n: u64) -> MemoryId {
        MemoryId::parse_field(&format!("00000000-0000-7000-8000-{n:012x}"), "id")
            .expect("valid test id")
    }

    fn list(ids: &[u64]) -> Vec<Scored> {
        ids.iter()
            .map(|&n| Scored {
                id: id(n),
                score: 1.0,
            })
            .collect()
    }

    struct Case {
        name: &'static str,
        lists: Vec<(Vec<u64>, f32)>,
        limit: usize,
        expected: Vec<(u64, f32, Vec<Option<usize>>)>,
    }

    fn check(case: Case) {
        let owned: Vec<(Vec<Scored>, f32)> =
            case.lists.iter().map(|(ids, w)| (list(ids), *w)).collect();
        let lists: Vec<(&[Scored], f32)> = owned.iter().map(|(l, w)| (l.as_slice(), *w)).collect();
        let fused = fuse_rrf_with_ranks(&lists, 60.0, case.limit);
        let got: Vec<(MemoryId, Vec<Option<usize>>)> =
            fused.iter().map(|f| (f.id, f.ranks.clone())).collect();
        let expected: Vec<(MemoryId, Vec<Option<usize>>)> = case
            .expected
            .iter()
            .map(|(n, _, ranks)| (id(*n), ranks.clone()))
            .collect();
        assert_eq!(got, expected, "{}", case.name);
        for (f, (_, score, _)) in fused.iter().zip(&case.expected) {
            assert!(
                (f.score - score).abs() < 1e-7,
                "{}: {} vs {score}",
                case.name,
                f.score
            );
        }
        let plain = fuse_rrf(&lists, 60.0, case.limit);
        assert_eq!(plain.len(), fused.len(), "{}", case.name);
    }

    #[test]
    fn fusion_arithmetic() {
        check(Case {
            name: "both lists",
            lists: vec![(vec![1, 2, 3], 1.0), (vec![3, 1], 1.0)],
            limit: 10,
            expected: vec![
                (1, 1.0 / 61.0 + 1.0 / 62.0, vec![Some(1), Some(2)]),
                (3, 1.0 / 63.0 + 1.0 / 61.0, vec![Some(3), Some(1)]),
                (2, 1.0 / 62.0, vec![Some(2), None]),
            ],
        });
        check(Case {
            name: "weights",
            lists: vec![(vec![1], 1.0), (vec![2], 2.0)],
            limit: 10,
            expected: vec![
                (2, 2.0 / 61.0, vec![None, Some(1)]),
                (1, 1.0 / 61.0, vec![Some(1), None]),
            ],
        });
        check(Case {
            name: "ties put the newer id first; limit applies after sorting",
            lists: vec![(vec![1], 1.0), (vec![2], 1.0), (vec![3], 0.5)],
            limit: 2,
            expected: vec![
                (2, 1.0 / 61.0, vec![None, Some(1), None]),
                (1, 1.0 / 61.0, vec![Some(1), None, None]),
            ],
        });
        check(Case {
            name: "a duplicate in one list counts once, at its better rank",
            lists: vec![(vec![1, 1], 1.0)],
            limit: 10,
            expected: vec![(1, 1.0 / 61.0, vec![Some(1)])],
        });
        check(Case {
            name: "nothing in, nothing out",
            lists: vec![(vec![], 1.0)],
            limit: 10,
            expected: vec![],
        });
    }
}
