//! Graph walks over memory links, level by level.
//!
//! Storage loads edges one level at a time (one query per hop), so the walk is a small state
//! machine: the caller asks for the [`Walk::frontier`], fetches those memories' edges and hands
//! them to [`Walk::advance`]. The walk caps the number of memories it visits and says so.

use std::collections::HashMap;

use crate::MemoryId;
use crate::lexical::term_overlap;

/// A described link as storage returns it, oriented away from a frontier memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: MemoryId,
    pub to: MemoryId,
    pub description: String,
    /// The description's vector, when one has been made.
    pub embedding: Option<crate::Embedding>,
}

/// How a memory was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// Hops from the start (0 for the start itself).
    pub depth: usize,
    /// The memory it was reached from and the description of the edge taken.
    pub via: Option<(MemoryId, String)>,
    /// How well the edge taken matched the walk's query (1 for walks without one).
    pub edge_score: f32,
}

/// A breadth-first walk from one memory.
#[derive(Debug, Clone)]
pub struct Walk {
    order: Vec<MemoryId>,
    visits: HashMap<MemoryId, Visit>,
    frontier: Vec<MemoryId>,
    depth: usize,
    max_nodes: usize,
    truncated: bool,
}

impl Walk {
    pub fn new(start: MemoryId, max_nodes: usize) -> Self {
        let mut visits = HashMap::new();
        visits.insert(
            start,
            Visit {
                depth: 0,
                via: None,
                edge_score: 1.0,
            },
        );
        Self {
            order: vec![start],
            visits,
            frontier: vec![start],
            depth: 0,
            max_nodes: max_nodes.max(1),
            truncated: false,
        }
    }

    /// The memories whose edges the next [`advance`](Self::advance) needs.
    pub fn frontier(&self) -> &[MemoryId] {
        &self.frontier
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether the walk stopped early because it reached its node cap.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn contains(&self, id: &MemoryId) -> bool {
        self.visits.contains_key(id)
    }

    /// Takes one hop along `edges` (those leaving the current frontier). `follow` scores an edge;
    /// `None` means the edge is not followed. Returns how many new memories were reached.
    pub fn advance(&mut self, edges: &[Edge], follow: impl Fn(&Edge) -> Option<f32>) -> usize {
        self.depth += 1;
        let mut next = Vec::new();
        for edge in edges {
            if self.visits.contains_key(&edge.to) || !self.frontier.contains(&edge.from) {
                continue;
            }
            let Some(edge_score) = follow(edge) else {
                continue;
            };
            if self.order.len() >= self.max_nodes {
                self.truncated = true;
                break;
            }
            self.visits.insert(
                edge.to,
                Visit {
                    depth: self.depth,
                    via: Some((edge.from, edge.description.clone())),
                    edge_score,
                },
            );
            self.order.push(edge.to);
            next.push(edge.to);
        }
        self.frontier = next;
        self.frontier.len()
    }

    /// Every memory reached, in the order reached, with how.
    pub fn visited(&self) -> impl Iterator<Item = (MemoryId, &Visit)> {
        self.order.iter().map(|id| (*id, &self.visits[id]))
    }

    /// The path from the start to `target` as (memory, description of the edge that led to it).
    pub fn path_to(&self, target: MemoryId) -> Option<Vec<(MemoryId, Option<String>)>> {
        let mut path = Vec::new();
        let mut current = target;
        loop {
            let visit = self.visits.get(&current)?;
            path.push((current, visit.via.as_ref().map(|(_, d)| d.clone())));
            match &visit.via {
                Some((parent, _)) => current = *parent,
                None => break,
            }
        }
        path.reverse();
        Some(path)
    }
}

/// The edge rule of `traverse_graph`: follow an edge when its description shares at least
/// `threshold` of the query's terms. A threshold of 0 follows every edge.
pub fn query_edge_score(query: &str, threshold: f32) -> impl Fn(&Edge) -> Option<f32> + '_ {
    move |edge| {
        let score = term_overlap(query, &edge.description);
        (score >= threshold).then_some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<MemoryId> {
        (0..n).map(|_| MemoryId::new()).collect()
    }

    fn edge(from: MemoryId, to: MemoryId, description: &str) -> Edge {
        Edge {
            from,
            to,
            description: description.into(),
            embedding: None,
        }
    }

    /// Runs a walk against an in-memory undirected graph, as the API does against storage.
    fn walk(
        start: MemoryId,
        graph: &[Edge],
        hops: usize,
        max_nodes: usize,
        follow: &dyn Fn(&Edge) -> Option<f32>,
    ) -> Walk {
        let mut w = Walk::new(start, max_nodes);
        while w.depth() < hops && !w.frontier().is_empty() {
            let frontier = w.frontier().to_vec();
            let edges: Vec<Edge> = graph
                .iter()
                .flat_map(|e| [e.clone(), edge(e.to, e.from, &e.description)])
                .filter(|e| frontier.contains(&e.from))
                .collect();
            w.advance(&edges, follow);
        }
        w
    }

    #[test]
    fn shortest_path_and_hops() {
        let n = ids(5);
        let graph = [
            edge(n[0], n[1], "a"),
            edge(n[1], n[2], "b"),
            edge(n[2], n[3], "c"),
            edge(n[0], n[4], "d"),
            edge(n[4], n[3], "e"),
        ];
        let w = walk(n[0], &graph, 5, 100, &|_| Some(1.0));
        let path: Vec<MemoryId> = w
            .path_to(n[3])
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(path, vec![n[0], n[4], n[3]]);
        assert_eq!(w.path_to(n[3]).unwrap()[2].1.as_deref(), Some("e"));

        let one_hop = walk(n[0], &graph, 1, 100, &|_| Some(1.0));
        let reached: Vec<MemoryId> = one_hop.visited().map(|(id, _)| id).collect();
        assert_eq!(reached, vec![n[0], n[1], n[4]]);
        assert!(one_hop.path_to(n[3]).is_none());
    }

    #[test]
    fn node_cap_truncates() {
        let n = ids(10);
        let graph: Vec<Edge> = n[1..].iter().map(|to| edge(n[0], *to, "x")).collect();
        let w = walk(n[0], &graph, 1, 4, &|_| Some(1.0));
        assert_eq!(w.visited().count(), 4);
        assert!(w.truncated());
    }

    #[test]
    fn traversal_follows_only_matching_edges() {
        let n = ids(4);
        let graph = [
            edge(n[0], n[1], "coffee causes reflux"),
            edge(n[1], n[2], "reflux treated with medication"),
            edge(n[0], n[3], "owns a cat"),
        ];
        let w = walk(
            n[0],
            &graph,
            3,
            100,
            &query_edge_score("coffee reflux", 0.5),
        );
        let reached: Vec<MemoryId> = w.visited().map(|(id, _)| id).collect();
        assert_eq!(reached, vec![n[0], n[1], n[2]]);
        assert_eq!(w.visited().nth(1).unwrap().1.edge_score, 1.0);
    }
}
