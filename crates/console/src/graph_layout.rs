//! Where each memory of a neighbourhood is drawn: a radial layout by link distance. The centre
//! sits in the middle; the memories `h` links away sit evenly on ring `h`, each ring ordered by
//! the position of the parent it was reached through (so edges between rings rarely cross).
//! Pure and deterministic: the same neighbourhood always looks the same.

use std::collections::{BTreeMap, HashMap};

/// A node to place: its id and its distance from the centre in links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode<Id> {
    pub id: Id,
    pub hops: usize,
}

/// A placed node.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed<Id> {
    pub id: Id,
    pub hops: usize,
    pub x: f64,
    pub y: f64,
}

/// The drawing's size and the distance between rings, in SVG units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Canvas {
    pub width: f64,
    pub height: f64,
}

impl Canvas {
    fn ring_gap(&self, rings: usize) -> f64 {
        let radius = self.width.min(self.height) / 2.0 - 60.0;
        radius.max(40.0) / rings.max(1) as f64
    }
}

/// Places `nodes` (one of them at hop 0, the centre) on rings, given the undirected `edges`
/// between them. Nodes are kept in their given order within a parent's children; a node whose
/// parent cannot be found (none of its edges leads one hop inwards) goes to the end of its ring.
pub fn radial_layout<Id>(
    nodes: &[GraphNode<Id>],
    edges: &[(Id, Id)],
    canvas: Canvas,
) -> Vec<Placed<Id>>
where
    Id: Clone + Eq + std::hash::Hash,
{
    let hops: HashMap<&Id, usize> = nodes.iter().map(|n| (&n.id, n.hops)).collect();
    let deepest = nodes.iter().map(|n| n.hops).max().unwrap_or(0);
    let gap = canvas.ring_gap(deepest);
    let (cx, cy) = (canvas.width / 2.0, canvas.height / 2.0);
    // Each node's angle in turns (0..1): rings are laid out inside out, so parents have theirs.
    let mut angle: HashMap<Id, f64> = HashMap::new();
    let mut rings: BTreeMap<usize, Vec<&GraphNode<Id>>> = BTreeMap::new();
    for node in nodes {
        rings.entry(node.hops).or_default().push(node);
    }
    let mut placed = Vec::with_capacity(nodes.len());
    for (ring, members) in rings {
        // The parent's angle orders the ring; the given order breaks ties.
        let mut keyed: Vec<(f64, usize, &GraphNode<Id>)> = members
            .into_iter()
            .enumerate()
            .map(|(order, node)| {
                let parent_angle = edges
                    .iter()
                    .filter_map(|(a, b)| {
                        if *a == node.id {
                            Some(b)
                        } else if *b == node.id {
                            Some(a)
                        } else {
                            None
                        }
                    })
                    .filter(|other| hops.get(other).is_some_and(|h| h + 1 == ring))
                    .filter_map(|other| angle.get(other).copied())
                    .fold(None, |min: Option<f64>, a| {
                        Some(min.map_or(a, |m| m.min(a)))
                    })
                    .unwrap_or(f64::MAX);
                (parent_angle, order, node)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let count = keyed.len();
        for (slot, (_, _, node)) in keyed.into_iter().enumerate() {
            let turn = if ring == 0 {
                0.0
            } else {
                // Offset by half a slot so a ring of one does not sit on the centre's axis.
                (slot as f64 + 0.5) / count as f64
            };
            let radius = gap * ring as f64;
            let theta = turn * std::f64::consts::TAU - std::f64::consts::FRAC_PI_2;
            angle.insert(node.id.clone(), turn);
            placed.push(Placed {
                id: node.id.clone(),
                hops: ring,
                x: cx + radius * theta.cos(),
                y: cy + radius * theta.sin(),
            });
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANVAS: Canvas = Canvas {
        width: 600.0,
        height: 600.0,
    };

    fn node(id: &'static str, hops: usize) -> GraphNode<&'static str> {
        GraphNode { id, hops }
    }

    fn distance(p: &Placed<&str>) -> f64 {
        ((p.x - 300.0).powi(2) + (p.y - 300.0).powi(2)).sqrt()
    }

    #[test]
    fn rings_follow_link_distance_and_the_centre_is_in_the_middle() {
        let nodes = [node("c", 0), node("a", 1), node("b", 1), node("d", 2)];
        let edges = [("c", "a"), ("c", "b"), ("b", "d")];
        let placed = radial_layout(&nodes, &edges, CANVAS);
        assert_eq!(placed.len(), 4);
        let by_id = |id: &str| placed.iter().find(|p| p.id == id).expect("placed");
        assert!(distance(by_id("c")) < 1e-9);
        let ring1 = distance(by_id("a"));
        assert!((distance(by_id("b")) - ring1).abs() < 1e-9);
        assert!((distance(by_id("d")) - 2.0 * ring1).abs() < 1e-9);
        // Everything stays on the canvas.
        for p in &placed {
            assert!((0.0..=600.0).contains(&p.x) && (0.0..=600.0).contains(&p.y));
        }
    }

    #[test]
    fn the_layout_is_deterministic_and_children_follow_their_parents() {
        let nodes = [
            node("c", 0),
            node("a", 1),
            node("b", 1),
            node("b1", 2),
            node("a1", 2),
        ];
        let edges = [("c", "a"), ("c", "b"), ("b", "b1"), ("a1", "a")];
        let first = radial_layout(&nodes, &edges, CANVAS);
        assert_eq!(first, radial_layout(&nodes, &edges, CANVAS));
        let ring2: Vec<&str> = first.iter().filter(|p| p.hops == 2).map(|p| p.id).collect();
        assert_eq!(ring2, ["a1", "b1"], "ordered by their parents' places");
    }

    #[test]
    fn a_lone_centre_and_orphans_are_placed_too() {
        let placed = radial_layout(&[node("c", 0)], &[], CANVAS);
        assert_eq!(placed.len(), 1);
        let placed = radial_layout(&[node("c", 0), node("x", 1)], &[], CANVAS);
        assert_eq!(placed.len(), 2);
        assert!(placed.iter().all(|p| p.x.is_finite() && p.y.is_finite()));
    }
}
