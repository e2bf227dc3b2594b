//! Ranking over one tenant's index: lexical and dense candidates that pass the tag filter,
//! fused by relative scores; when the question names a time, the same ranking among the
//! memories observed then weighs in; then every hit lends a share of its score to its episode
//! neighbours, and each gains a share of the best score near it in its episode (as far as the
//! memories observed around the best hits are more alike than those elsewhere); a memory of a
//! few words keeps less of its score; with `full_scope`, every other memory in scope after them.

use std::collections::{HashMap, HashSet};

use chrono::DateTime;
use membrain_index::{Scored, TenantIndex, best_scored, blend, fuse_relative};
use membrain_memory::embedding::cosine;
use membrain_memory::when::TimeSpan;
use membrain_memory::{MemoryId, TagFilter, ValidationError};

use crate::semantic::SyncedIndex;

/// Candidates each ranker hands to fusion, at least: the dense scores are rescaled within this
/// pool, so it stays fixed for every k up to it.
const FUSION_POOL: usize = 50;
/// The lexical share of the fused score (the dense share is the rest). Chosen on LoCoMo
/// (`benches/locomo.rs --dump`): before the episode steps, recall@10 0.69–0.70 for 0.5–0.65,
/// against 0.61–0.68 for reciprocal-rank fusion at any constant, and 0.65 / 0.50 for lexical /
/// dense alone; with them, 0.7 finds a little more than 0.6 (see [`EPISODE_CONTEXT_WEIGHT`]).
const LEXICAL_WEIGHT: f32 = 0.7;
/// The share of the hybrid score that ranks among the memories observed in the time a question
/// names ("in October 2023") or soon after (`TimeSpan::may_tell_of`); the rest is the ranking
/// over all of them, so a question whose time was misread, or whose answer was stated at
/// another time, still finds it.
const TIME_WEIGHT: f32 = 0.5;
/// The share of its score a hit lends to the memory observed next to it, and to the one after
/// that (each way). Chosen on LoCoMo: alone, [0.4, 0.2] took the questions with an evidence
/// turn in the top 10 from 0.725 to 0.796 (scored offline from `--dump`); beside
/// [`EPISODE_CONTEXT_WEIGHT`], [0.3, 0.15] with a context weight of 0.6 found 0.845, against
/// 0.838 for [0.4, 0.2] with 0.5 and for [0.3, 0] with 0.7.
const EPISODE_SHARES: [f32; 2] = [0.3, 0.15];
/// How far apart in observation time two neighbouring memories of one episode may be: a
/// conversation's turns are minutes apart; yesterday's memory is another episode.
const EPISODE_WINDOW: i64 = 60 * 60 * 1_000_000;
/// The share of the best hit's score within [`EPISODE_CONTEXT_REACH`] steps (itself included)
/// that every ranked memory gains: a memory from the part of a conversation that the question
/// is about is likelier to answer it than an equal match from elsewhere. Chosen on LoCoMo
/// (`benches/locomo.rs`, all of search): questions with an evidence turn in the top 5 / 10
/// went from 0.726 / 0.821 without it to 0.744 / 0.845 (0.8 and 1.0: 0.743 / 0.849, but
/// fewer sessions among the top 10 turns); reaches from 4 to 64 steps score alike (offline,
/// from `--dump`).
const EPISODE_CONTEXT_WEIGHT: f32 = 0.6;
/// How many steps each way a hit counts as the context of the memories around it.
const EPISODE_CONTEXT_REACH: usize = 8;
/// How many of the best hits [`episode_trust`] looks around.
const EPISODE_TRUST_HITS: usize = 20;
/// How much more alike to the best hits, on average, the memories observed around them must be
/// than the tenant's memories outside their episodes (in cosine similarity) before the episode
/// steps count at all ([`EPISODE_TRUST_FROM`]), and how much more again before they count in
/// full ([`EPISODE_TRUST_SPAN`]). Memories stored in one burst that have nothing to do with each
/// other (an import of notes) are observed next to each other all the same; there, lending
/// scores to neighbours lifts noise: on LoCoMo with every conversation's turns stored in no
/// order and without `observed_at` (`benches/locomo.rs --shuffled`), questions with an evidence
/// turn in the top 10 went from 0.743 without the episode steps to 0.688 with them. A
/// conversation's turns are more alike than its turns at random, and averaged over the best
/// hits the two cases part clearly even though single pairs do not (a floor on each pair's
/// similarity, 0.1 to 0.3, found 0.690–0.696 there and cost the ordered store up to 0.6).
/// With 0.01 and 0.03 the shuffled store finds 0.743 and the ordered one keeps 0.857 / 0.769
/// in the top 10 / 5 (a span of 0.05 from 0: the same shuffled, 0.855 / 0.767 ordered).
const EPISODE_TRUST_FROM: f32 = 0.01;
const EPISODE_TRUST_SPAN: f32 = 0.03;
/// The share of its hybrid score a memory of almost no terms loses: its score is scaled by
/// `1 − SHORT_MEMORY_PENALTY · (1 − min(1, terms / FULL_LENGTH_TERMS))`. A memory of a few
/// words ("Thanks!", "Sounds fun, Mel") seldom holds what a question asks for, yet BM25's
/// length normalisation and the episode steps (which lift every memory near a hit alike)
/// favour it. Chosen on LoCoMo (`benches/locomo.rs`): questions with an evidence turn in the
/// top 5 / 10 went from 0.744 / 0.847 to 0.769 / 0.856 at 0.5 and 20 terms; 0.4–0.5 and 16–30
/// terms all score within a point of it.
const SHORT_MEMORY_PENALTY: f32 = 0.5;
/// Terms (as BM25 counts them: stemmed, stop words left out) from which a memory is long
/// enough to lose nothing to [`SHORT_MEMORY_PENALTY`].
const FULL_LENGTH_TERMS: f32 = 20.0;

/// Which rankers order the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Lexical and dense, fused (the default).
    Hybrid,
    /// BM25 only.
    Lexical,
    /// Vectors only (lexical when the query has no vector).
    Dense,
}

impl Ranking {
    /// `hybrid` (or nothing), `lexical` (`bm25`) or `dense` (`semantic`), any case.
    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        match raw.map(|f| f.trim().to_lowercase()).as_deref() {
            None | Some("") | Some("hybrid") => Ok(Self::Hybrid),
            Some("lexical") | Some("bm25") => Ok(Self::Lexical),
            Some("dense") | Some("semantic") => Ok(Self::Dense),
            Some(other) => Err(ValidationError::new(
                "ranking",
                format!("{other:?} is not one of \"hybrid\", \"lexical\", \"dense\""),
            )),
        }
    }
}

/// The cosine similarity of the query and a memory, when both have vectors.
pub(super) fn similarity(index: &SyncedIndex, vector: Option<&[f32]>, id: MemoryId) -> Option<f32> {
    Some(cosine(vector?, index.index.vector(id)?))
}

/// The observation times a search keeps (`observed_after`, `observed_before`): from `after`
/// (included) to `before` (excluded), in microseconds since the epoch, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedWindow {
    pub after: Option<i64>,
    pub before: Option<i64>,
}

impl ObservedWindow {
    /// Whether a memory observed at `at` is kept.
    pub fn admits(&self, at: i64) -> bool {
        self.after.is_none_or(|after| at >= after) && self.before.is_none_or(|before| at < before)
    }
}

/// What [`rank`] needs, owned, so it can run on a blocking thread.
pub(super) struct RankRequest {
    pub(super) query: String,
    pub(super) vector: Option<std::sync::Arc<[f32]>>,
    pub(super) ranking: Ranking,
    pub(super) k: usize,
    pub(super) full_scope: bool,
    pub(super) max_results: usize,
    /// The time the question names, if any (hybrid ranking only: the others are baselines).
    pub(super) time: Option<TimeSpan>,
    /// Only memories observed within it, whatever the ranking.
    pub(super) observed: ObservedWindow,
}

/// The ranked ids (and whether the full-scope list was cut): lexical and dense candidates that
/// pass the filter, fused; with `full_scope`, every other memory in scope after them.
pub(super) fn rank(
    index: &TenantIndex,
    filter: &TagFilter,
    request: &RankRequest,
) -> (Vec<Scored>, bool) {
    let matcher = filter.matcher();
    let window = request.observed;
    // The observation window is the cheaper test, so it goes first.
    let accept = |tags: &[String], at: i64| window.admits(at) && matcher.matches(tags);
    // The same test for a memory known by id (an episode neighbour, the rest of the scope).
    let admits = |id: MemoryId| match (index.tags(id), index.observed_at(id)) {
        (Some(tags), Some(at)) => accept(tags, at),
        _ => false,
    };
    let RankRequest {
        query,
        vector,
        ranking,
        k,
        ..
    } = request;
    let (ranking, k) = (*ranking, *k);
    let pool = k.max(FUSION_POOL);
    let lexical = if ranking == Ranking::Dense && vector.is_some() || query.is_empty() {
        Vec::new()
    } else {
        index.lexical_where(query, &accept, pool)
    };
    let dense = match vector {
        Some(v) if ranking != Ranking::Lexical => index.dense_where(v, &accept, pool, -1.0),
        _ => Vec::new(),
    };
    let mut ranked: Vec<Scored> = match ranking {
        Ranking::Hybrid => {
            // Every candidate of either list, so none is cut before episodes lend their scores.
            let every = lexical.len() + dense.len();
            let overall = fuse_relative(&lexical, &dense, LEXICAL_WEIGHT, every);
            let fused = match request.time {
                Some(span) => {
                    let in_span = |tags: &[String], at: i64| {
                        DateTime::from_timestamp_micros(at).is_some_and(|at| span.may_tell_of(at))
                            && accept(tags, at)
                    };
                    let lexical_then = index.lexical_where(query, &in_span, pool);
                    let dense_then = match vector {
                        Some(v) => index.dense_where(v, &in_span, pool, -1.0),
                        None => Vec::new(),
                    };
                    let every = lexical_then.len() + dense_then.len();
                    let then = fuse_relative(&lexical_then, &dense_then, LEXICAL_WEIGHT, every);
                    blend(&overall, &then, TIME_WEIGHT, usize::MAX)
                }
                None => overall,
            };
            with_episodes(index, &fused, &admits, k)
        }
        Ranking::Dense if vector.is_some() => dense.into_iter().take(k).collect(),
        Ranking::Lexical | Ranking::Dense => lexical.into_iter().take(k).collect(),
    };
    let mut truncated = false;
    if request.full_scope {
        let listed: std::collections::HashSet<MemoryId> = ranked.iter().map(|r| r.id).collect();
        let mut rest: Vec<MemoryId> = index
            .ids()
            .filter(|id| !listed.contains(id) && admits(*id))
            .collect();
        // Newest first (ids are time-ordered).
        rest.sort_unstable_by(|a, b| b.cmp(a));
        ranked.extend(rest.into_iter().map(|id| Scored { id, score: 0.0 }));
        if ranked.len() > request.max_results {
            ranked.truncate(request.max_results);
            truncated = true;
        }
    }
    (ranked, truncated)
}

/// Every hit lends a share of its score to the memories observed just before and after it
/// ([`EPISODE_SHARES`], by distance, within [`EPISODE_WINDOW`]): the turns around an answer
/// in a conversation, the steps around one in a task. What a question asks about is often
/// said in the memory next to the one that uses its words ("What languages has James used?"
/// — "Which ones have you worked with?" — "Python and C++"). Then every memory so ranked
/// gains [`EPISODE_CONTEXT_WEIGHT`] of the best score among the hits within
/// [`EPISODE_CONTEXT_REACH`] steps of it, and last its score is scaled by [`length_prior`].
/// What a hit lends and gives as context is scaled by [`episode_trust`].
/// A neighbour that `admits` refuses (the tag filter, the observation window) is not added.
/// Returns the best `k`.
fn with_episodes(
    index: &TenantIndex,
    fused: &[Scored],
    admits: &dyn Fn(MemoryId) -> bool,
    k: usize,
) -> Vec<Scored> {
    let mut scores: HashMap<MemoryId, f32> = fused.iter().map(|hit| (hit.id, hit.score)).collect();
    // The best hit's score within the context reach of each memory, itself included.
    let mut best_near: HashMap<MemoryId, f32> = HashMap::new();
    let mut refused: HashSet<MemoryId> = HashSet::new();
    let reach = EPISODE_SHARES.len().max(EPISODE_CONTEXT_REACH);
    let neighbourhoods: Vec<Vec<(MemoryId, usize)>> = fused
        .iter()
        .map(|hit| index.episode_neighbours(hit.id, reach, EPISODE_WINDOW))
        .collect();
    let trust = episode_trust(index, fused, &neighbourhoods);
    for (hit, neighbours) in fused.iter().zip(neighbourhoods) {
        let near = best_near.entry(hit.id).or_default();
        *near = near.max(hit.score);
        if trust == 0.0 {
            continue;
        }
        let lending = trust * hit.score;
        for (other, distance) in neighbours {
            let near = best_near.entry(other).or_default();
            *near = near.max(lending);
            let Some(share) = EPISODE_SHARES.get(distance - 1) else {
                continue;
            };
            if refused.contains(&other) {
                continue;
            }
            let lent = share * lending;
            match scores.get_mut(&other) {
                Some(score) => *score += lent,
                None if admits(other) => {
                    scores.insert(other, lent);
                }
                None => {
                    refused.insert(other);
                }
            }
        }
    }
    let with_context = scores.into_iter().map(|(id, score)| {
        let near = best_near.get(&id).copied().unwrap_or_default();
        let prior = length_prior(index.term_count(id).unwrap_or(0));
        (id, (score + EPISODE_CONTEXT_WEIGHT * near) * prior)
    });
    best_scored(with_context, k)
}

/// How far the episode steps are to be trusted for this search, from 0 (not at all) to 1: by
/// how much more alike the memories observed around the best [`EPISODE_TRUST_HITS`] hits
/// (`neighbourhoods`, by hit) are to them than the tenant's memories outside those episodes
/// are, on average (see [`EPISODE_TRUST_FROM`]). In full when it cannot be told (no
/// embeddings, or a store that is hardly more than one episode), as time order is then all
/// there is.
fn episode_trust(
    index: &TenantIndex,
    fused: &[Scored],
    neighbourhoods: &[Vec<(MemoryId, usize)>],
) -> f32 {
    let rows = index.vector_count();
    let mut excess_sum = 0.0;
    let mut measured = 0;
    let best = fused.iter().zip(neighbourhoods).take(EPISODE_TRUST_HITS);
    for (hit, neighbours) in best {
        let Some(vector) = index.vector(hit.id) else {
            continue;
        };
        let Some(mean_all) = index.mean_cosine(vector) else {
            continue;
        };
        let near: Vec<f32> = neighbours
            .iter()
            .filter_map(|(other, _)| Some(cosine(vector, index.vector(*other)?)))
            .collect();
        // The memories outside the episode: every row but the hit's own (similarity 1) and its
        // neighbours'. Fewer of them than neighbours cannot say what unrelated memories look
        // like (a store that is one conversation), and the hit goes unmeasured.
        let outside = rows.saturating_sub(1 + near.len());
        if near.is_empty() || outside < near.len() {
            continue;
        }
        let near_sum: f32 = near.iter().sum();
        let mean_outside = (mean_all * rows as f32 - 1.0 - near_sum) / outside as f32;
        excess_sum += near_sum / near.len() as f32 - mean_outside;
        measured += 1;
    }
    if measured == 0 {
        return 1.0;
    }
    let excess = excess_sum / measured as f32;
    ((excess - EPISODE_TRUST_FROM) / EPISODE_TRUST_SPAN).clamp(0.0, 1.0)
}

/// What a memory of `terms` terms keeps of its hybrid score: from `1 − SHORT_MEMORY_PENALTY`
/// for none up to all of it at [`FULL_LENGTH_TERMS`] and beyond.
fn length_prior(terms: usize) -> f32 {
    let fullness = (terms as f32 / FULL_LENGTH_TERMS).min(1.0);
    1.0 - SHORT_MEMORY_PENALTY * (1.0 - fullness)
}

#[cfg(test)]
mod tests {
    use membrain_index::Document;
    use membrain_memory::Limits;
    use membrain_memory::tag_filter::TagFilterInput;

    use super::*;

    /// An index of `(text, tag, vector)` documents, ids in the order given (ids are
    /// time-ordered, so later ones are newer).
    fn index(documents: &[(&str, &str, [f32; 2])]) -> (TenantIndex, Vec<MemoryId>) {
        let mut index = TenantIndex::new(2);
        let mut ids = Vec::new();
        for (text, tag, vector) in documents {
            let id = MemoryId::new();
            index.upsert(Document {
                id,
                text: (*text).to_owned(),
                tags: vec![(*tag).to_owned()],
                embedding: Some(vector.to_vec()),
                observed_at: 0,
            });
            ids.push(id);
        }
        (index, ids)
    }

    fn request(query: &str, vector: Option<[f32; 2]>, ranking: Ranking, k: usize) -> RankRequest {
        RankRequest {
            query: query.to_owned(),
            vector: vector.map(|v| v.to_vec().into()),
            ranking,
            k,
            full_scope: false,
            max_results: 100,
            time: None,
            observed: ObservedWindow::default(),
        }
    }

    fn filter(scope_regex: Option<&str>) -> TagFilter {
        let input = TagFilterInput {
            scope_regex: scope_regex.map(str::to_owned),
            ..TagFilterInput::default()
        };
        TagFilter::parse(input, &Limits::default()).expect("a valid filter")
    }

    fn ids(ranked: &[Scored]) -> Vec<MemoryId> {
        ranked.iter().map(|r| r.id).collect()
    }

    #[test]
    fn each_ranking_orders_by_its_own_signal() {
        let (index, id) = index(&[
            ("green tea every morning", "drinks", [0.0, 1.0]),
            ("black coffee at work", "drinks", [1.0, 0.0]),
            ("tea tea tea", "other", [0.6, 0.8]),
        ]);
        let all = filter(None);
        // Words: "tea" thrice beats once; coffee has none.
        let (lexical, _) = rank(&index, &all, &request("tea", None, Ranking::Lexical, 5));
        assert_eq!(ids(&lexical), [id[2], id[0]]);
        // Vectors: the coffee memory points where the query does.
        let (dense, _) = rank(
            &index,
            &all,
            &request("tea", Some([1.0, 0.0]), Ranking::Dense, 1),
        );
        assert_eq!(ids(&dense), [id[1]]);
        // Dense without a vector falls back to words.
        let (fallback, _) = rank(&index, &all, &request("tea", None, Ranking::Dense, 5));
        assert_eq!(ids(&fallback), ids(&lexical));
        // Hybrid: the memory strong on both signals first.
        let (hybrid, _) = rank(
            &index,
            &all,
            &request("tea", Some([0.6, 0.8]), Ranking::Hybrid, 3),
        );
        assert_eq!(hybrid[0].id, id[2]);
    }

    #[test]
    fn the_filter_applies_before_k_and_full_scope_lists_the_rest_newest_first() {
        let (index, id) = index(&[
            ("tea one", "drinks", [0.0, 1.0]),
            ("nothing alike", "drinks", [1.0, 0.0]),
            ("tea two", "other", [0.0, 1.0]),
            ("also unrelated", "drinks", [1.0, 0.0]),
        ]);
        let drinks = filter(Some("^drinks$"));
        let (ranked, _) = rank(&index, &drinks, &request("tea", None, Ranking::Lexical, 1));
        assert_eq!(
            ids(&ranked),
            [id[0]],
            "the other-tagged match never takes the place"
        );
        let mut full = request("tea", None, Ranking::Lexical, 1);
        full.full_scope = true;
        let (listed, truncated) = rank(&index, &drinks, &full);
        assert_eq!(ids(&listed), [id[0], id[3], id[1]]);
        assert!(!truncated);
        assert!(listed[1..].iter().all(|r| r.score == 0.0));
        full.max_results = 2;
        let (cut, truncated) = rank(&index, &drinks, &full);
        assert_eq!((ids(&cut), truncated), (vec![id[0], id[3]], true));
    }

    #[test]
    fn a_time_in_the_question_prefers_memories_observed_then() {
        let micros = |raw: &str| {
            raw.parse::<DateTime<chrono::Utc>>()
                .expect("a time")
                .timestamp_micros()
        };
        let mut index = TenantIndex::new(2);
        let mut ids = Vec::new();
        for (text, observed, vector) in [
            ("tea tea with friends", "2023-06-02T10:00:00Z", [0.0, 1.0]),
            ("tea at the market", "2023-10-13T10:00:00Z", [0.3, 0.95]),
            ("coffee only", "2023-10-14T10:00:00Z", [1.0, 0.0]),
        ] {
            let id = MemoryId::new();
            index.upsert(Document {
                id,
                text: text.to_owned(),
                tags: vec![],
                embedding: Some(vector.to_vec()),
                observed_at: micros(observed),
            });
            ids.push(id);
        }
        let all = filter(None);
        let now = "2024-01-01T00:00:00Z".parse().expect("a time");
        let mut asked = request("tea in October 2023", Some([0.0, 1.0]), Ranking::Hybrid, 2);
        let (plain, _) = rank(&index, &all, &asked);
        assert_eq!(
            plain[0].id, ids[0],
            "without the time, the better match leads"
        );
        asked.time = membrain_memory::when::time_span(&asked.query, now);
        let (timed, _) = rank(&index, &all, &asked);
        assert_eq!(self::ids(&timed), [ids[1], ids[0]], "observed then, first");
        // Only hybrid ranking reads the time: the others are the baselines.
        asked.ranking = Ranking::Lexical;
        assert_eq!(rank(&index, &all, &asked).0[0].id, ids[0]);
    }

    #[test]
    fn a_hit_lifts_the_memories_observed_next_to_it() {
        let second = 1_000_000;
        let mut index = TenantIndex::new(2);
        let mut ids = Vec::new();
        // A conversation (seconds apart), then a day later an unrelated mention of the words.
        for (text, tag, at) in [
            (
                "Which programming languages have you worked with?",
                "chat",
                0,
            ),
            ("Python and C++, and some Rust", "chat", second),
            ("The weather was fine", "private", 2 * second),
            ("A talk on languages", "chat", 86_400 * second),
        ] {
            let id = MemoryId::new();
            index.upsert(Document {
                id,
                text: text.to_owned(),
                tags: vec![tag.to_owned()],
                embedding: None,
                observed_at: at,
            });
            ids.push(id);
        }
        let asked = request("programming languages worked", None, Ranking::Hybrid, 3);
        let (ranked, _) = rank(&index, &filter(None), &asked);
        assert_eq!(self::ids(&ranked)[..2], [ids[0], ids[1]], "{ranked:?}");
        // A neighbour the filter refuses is never added.
        let (chat, _) = rank(&index, &filter(Some("^chat$")), &asked);
        assert!(!self::ids(&chat).contains(&ids[2]), "{chat:?}");
        assert!(self::ids(&chat).contains(&ids[1]));
        // The baselines lend nothing.
        let lexical = Ranking::Lexical;
        let (plain, _) = rank(
            &index,
            &filter(None),
            &RankRequest {
                ranking: lexical,
                ..asked
            },
        );
        assert!(!self::ids(&plain).contains(&ids[1]), "{plain:?}");
    }

    #[test]
    fn a_memory_near_a_strong_hit_outranks_an_equal_match_elsewhere() {
        let second = 1_000_000;
        let mut index = TenantIndex::new(2);
        let mut ids = Vec::new();
        // One conversation about the compiler, seconds apart; a day later, the same weak
        // match on its own. The weak match in the conversation is beyond the lent shares'
        // reach of the strong hit, but within its context reach.
        let conversation = [
            "the rust compiler rejected my borrow",
            "that happens",
            "what did you change",
            "I cloned the vector",
            "compiler notes",
        ];
        for (step, text) in conversation.iter().enumerate() {
            ids.push(add(&mut index, text, step as i64 * second));
        }
        let elsewhere = add(&mut index, "compiler notes", 86_400 * second);
        let asked = request("rust compiler", None, Ranking::Hybrid, 10);
        let (ranked, _) = rank(&index, &filter(None), &asked);
        let position = |id| self::ids(&ranked).iter().position(|r| *r == id);
        assert_eq!(position(ids[0]), Some(0), "{ranked:?}");
        let (near, far) = (position(ids[4]), position(elsewhere));
        assert!(near.is_some() && far.is_some(), "{ranked:?}");
        assert!(
            near < far,
            "the match near the strong hit first: {ranked:?}"
        );
        // Without the strong hit's episode around it, the newer of two equal matches leads.
        let (plain, _) = rank(
            &index,
            &filter(None),
            &request("compiler notes", None, Ranking::Hybrid, 2),
        );
        assert_eq!(self::ids(&plain)[0], elsewhere, "{plain:?}");
    }

    /// One untagged memory with a vector; `at` in seconds.
    fn add_with_vector(index: &mut TenantIndex, text: &str, vector: [f32; 2], at: i64) -> MemoryId {
        insert(index, text, Some(vector), at * 1_000_000)
    }

    /// Searches "rust compiler" among a strong hit, a memory stored a second after it (of
    /// vector `next_to_hit`, no word of the question), a weaker match a day later whose vector
    /// points a little away from the question's, notes of the `burst` vectors stored a second
    /// after that memory and notes of the `elsewhere` vectors three days later. Returns the
    /// positions of the hit, the memory after it and the weaker match, and the ranking.
    fn rank_around_a_hit(
        next_to_hit: [f32; 2],
        burst: &[[f32; 2]],
        elsewhere: &[[f32; 2]],
    ) -> ([Option<usize>; 3], Vec<Scored>) {
        let mut index = TenantIndex::new(2);
        let hit = add_with_vector(
            &mut index,
            "the rust compiler rejected my borrow",
            [1.0, 0.0],
            0,
        );
        let next = add_with_vector(
            &mut index,
            "eggs milk bread butter cheese apples pears plums flour sugar salt pepper rice \
             beans lentils onions garlic carrots potatoes leeks",
            next_to_hit,
            1,
        );
        let weaker = add_with_vector(
            &mut index,
            "compiler flags for release builds: opt level three, thin lto, one codegen unit, \
             debug symbols stripped, panic abort, target cpu native, incremental off",
            [0.6, 0.8],
            86_400,
        );
        let days_later = 3 * 86_400;
        let notes = burst
            .iter()
            .map(|v| (v, 2))
            .chain(elsewhere.iter().map(|v| (v, days_later)));
        for (n, (vector, at)) in notes.enumerate() {
            let text = format!("note {n} on something else");
            add_with_vector(&mut index, &text, *vector, at);
        }
        let asked = request("rust compiler", Some([1.0, 0.0]), Ranking::Hybrid, 10);
        let (ranked, _) = rank(&index, &filter(None), &asked);
        let positions =
            [hit, next, weaker].map(|id| self::ids(&ranked).iter().position(|r| *r == id));
        assert!(
            positions.iter().all(Option::is_some),
            "all three ranked: {ranked:?}"
        );
        (positions, ranked)
    }

    /// Notes pointing every way: alike to nothing in particular.
    const SCATTERED: [[f32; 2]; 3] = [[0.0, -1.0], [-1.0, 0.0], [0.0, 1.0]];

    #[test]
    fn memories_stored_together_but_unalike_lend_each_other_nothing() {
        // An import: notes on everything stored in two seconds, the hit among them; the notes
        // stored elsewhere are no less alike, so the order they were stored in says nothing.
        let ([hit, next, weaker], ranked) =
            rank_around_a_hit([0.0, 1.0], &SCATTERED, &[SCATTERED, SCATTERED].concat());
        assert_eq!(hit, Some(0), "{ranked:?}");
        assert!(
            weaker < next,
            "the weaker match before a note that only sat next to the hit: {ranked:?}"
        );
    }

    #[test]
    fn memories_stored_together_and_alike_lend_each_other_their_scores() {
        // A conversation: the turn after the hit (no word of the question) is about the same
        // thing; what the tenant stored days later is not.
        let ([hit, next, weaker], ranked) = rank_around_a_hit([0.9, 0.44], &[], &SCATTERED);
        assert!(hit < weaker, "{ranked:?}");
        assert!(
            next < weaker,
            "the turn after the hit lifted past the weaker match: {ranked:?}"
        );
    }

    #[test]
    fn episode_trust_compares_neighbours_with_the_memories_outside_their_episode() {
        let trust_in = |neighbours: &[[f32; 2]], elsewhere: &[[f32; 2]]| {
            let mut index = TenantIndex::new(2);
            let hit = add_with_vector(&mut index, "hit", [1.0, 0.0], 0);
            for vector in neighbours {
                add_with_vector(&mut index, "near", *vector, 1);
            }
            for vector in elsewhere {
                add_with_vector(&mut index, "elsewhere", *vector, 3 * 86_400);
            }
            let around = index.episode_neighbours(hit, EPISODE_CONTEXT_REACH, EPISODE_WINDOW);
            episode_trust(
                &index,
                &[Scored {
                    id: hit,
                    score: 1.0,
                }],
                &[around],
            )
        };
        let alike = [[0.9, 0.44]; 3];
        assert_eq!(trust_in(&alike, &SCATTERED), 1.0, "a conversation");
        let as_elsewhere = [SCATTERED, SCATTERED].concat();
        assert_eq!(trust_in(&SCATTERED, &as_elsewhere), 0.0, "an import");
        // A store that is one episode, or hardly more: nothing to compare with, time order
        // is all there is.
        assert_eq!(trust_in(&SCATTERED, &[]), 1.0, "one episode");
        assert_eq!(
            trust_in(&SCATTERED, &SCATTERED[..2]),
            1.0,
            "too few outside"
        );
    }

    #[test]
    fn a_memory_of_a_few_words_yields_to_one_that_says_more() {
        let day = 86_400 * 1_000_000;
        // A day apart: two episodes, so neither lends to or gives context to the other.
        let mut index = TenantIndex::new(2);
        let short = add(&mut index, "Green tea!", 0);
        let long = add(
            &mut index,
            "Every morning I brew green tea with honey and lemon, and on weekends green tea \
             with mint from our garden before a long walk by the river",
            day,
        );
        // BM25 prefers the short memory (length normalisation): the lexical baseline keeps it.
        let (lexical, _) = rank(
            &index,
            &filter(None),
            &request("green tea", None, Ranking::Lexical, 2),
        );
        assert_eq!(ids(&lexical), [short, long]);
        // Hybrid scales a memory of two terms down to 0.55 of its score, one of 15 to 0.875.
        let (hybrid, _) = rank(
            &index,
            &filter(None),
            &request("green tea", None, Ranking::Hybrid, 2),
        );
        assert_eq!(ids(&hybrid), [long, short]);
        assert_eq!(length_prior(0), 1.0 - SHORT_MEMORY_PENALTY);
        assert_eq!(length_prior(FULL_LENGTH_TERMS as usize * 3), 1.0);
    }

    #[test]
    fn the_observation_window_bounds_every_ranking_and_the_neighbours_it_adds() {
        let second = 1_000_000;
        let mut index = TenantIndex::new(2);
        // A conversation at 0-2 s; the question's words again at 100 s.
        let ids: Vec<MemoryId> = [
            ("which languages have you worked with", 0),
            ("Python and C++", second),
            ("languages are fun", 2 * second),
            ("languages again", 100 * second),
        ]
        .into_iter()
        .map(|(text, at)| add(&mut index, text, at))
        .collect();
        let window = ObservedWindow {
            after: Some(second),
            before: Some(100 * second),
        };
        for ranking in [Ranking::Hybrid, Ranking::Lexical, Ranking::Dense] {
            let mut asked = request("languages worked", None, ranking, 10);
            asked.observed = window;
            let (ranked, _) = rank(&index, &filter(None), &asked);
            // The first turn and the later mention are outside, though both match and are
            // neighbours of a hit; hybrid adds the answer between them, which is inside.
            let found = self::ids(&ranked);
            assert!(found.contains(&ids[2]), "{ranking:?}: {ranked:?}");
            assert_eq!(
                found.contains(&ids[1]),
                ranking == Ranking::Hybrid,
                "{ranking:?}: {ranked:?}"
            );
            assert!(
                !found.contains(&ids[0]) && !found.contains(&ids[3]),
                "{ranking:?}: {ranked:?}"
            );
            asked.full_scope = true;
            let (listed, _) = rank(&index, &filter(None), &asked);
            assert_eq!(
                self::ids(&listed).len(),
                2,
                "{ranking:?} lists the two memories in the window: {listed:?}"
            );
        }
        assert!(window.admits(second) && !window.admits(100 * second));
        assert!(ObservedWindow::default().admits(i64::MIN));
    }

    /// Adds a lexical-only memory observed at `at` (microseconds) to `index`.
    fn add(index: &mut TenantIndex, text: &str, at: i64) -> MemoryId {
        insert(index, text, None, at)
    }

    /// One untagged memory; `at` in microseconds.
    fn insert(index: &mut TenantIndex, text: &str, vector: Option<[f32; 2]>, at: i64) -> MemoryId {
        let id = MemoryId::new();
        index.upsert(Document {
            id,
            text: text.to_owned(),
            tags: vec![],
            embedding: vector.map(|v| v.to_vec()),
            observed_at: at,
        });
        id
    }

    #[test]
    fn a_ranking_is_named_in_any_case_or_refused_with_the_choices() {
        assert_eq!(Ranking::parse(None), Ok(Ranking::Hybrid));
        assert_eq!(Ranking::parse(Some(" BM25 ")), Ok(Ranking::Lexical));
        assert_eq!(Ranking::parse(Some("semantic")), Ok(Ranking::Dense));
        let refused = Ranking::parse(Some("magic")).expect_err("refused");
        assert!(refused.message.contains("\"hybrid\""), "{refused:?}");
    }
}
