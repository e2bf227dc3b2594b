//! A memory's neighbourhood drawn as SVG: every memory within a few links, placed by
//! [`radial_layout`], each node a link to its own graph page (click to walk).

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use membrain_contract::graph::{NeighborhoodAnswer, NeighborhoodQuery};
use membrain_memory::MemoryId;
use serde::Deserialize;

use super::{graph_href, memory_href, short, tenant_key};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::graph_layout::{Canvas, GraphNode, radial_layout};
use crate::layout::page;
use crate::security::{ConsoleQuery, SignedIn, html_response};

const CANVAS: Canvas = Canvas {
    width: 760.0,
    height: 560.0,
};

#[derive(Debug, Default, Deserialize)]
pub struct GraphParams {
    #[serde(default)]
    hops: Option<String>,
}

/// `GET /console/graph/{memory_id}?hops=`.
pub async fn neighbourhood(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(memory_id): Path<String>,
    ConsoleQuery(params): ConsoleQuery<GraphParams>,
) -> Result<Response, ConsoleError> {
    let key = tenant_key(&signed_in)?;
    let hops = match params.hops.as_deref().map(str::trim) {
        None | Some("") => 2,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|h| (1..=3).contains(h))
            .ok_or_else(|| ConsoleError::bad_request("Hops must be 1, 2 or 3."))?,
    };
    let query = NeighborhoodQuery {
        memory_id: Some(memory_id),
        hops: Some(hops),
    };
    let answer: NeighborhoodAnswer = state
        .api
        .get(key, &["graph", "neighborhood"], Some(&query))
        .await?;
    let center = answer
        .memories
        .iter()
        .find(|m| m.memory.id == answer.center_id)
        .map(|m| m.memory.content.clone())
        .unwrap_or_default();
    let body = html! {
        form method="get" action=(graph_href(&answer.center_id)) class="bar" {
            label for="hops" { "Links away" }
            select id="hops" name="hops" {
                @for h in 1..=3 {
                    option value=(h) selected[h == hops] { (h) }
                }
            }
            button type="submit" { "Redraw" }
            a href=(memory_href(&answer.center_id)) { "Open this memory" }
        }
        p { "Centre: " strong id="graph-centre" { (short(&center, 160)) } }
        @if answer.truncated {
            p class="notice" { "The neighbourhood is larger than the API shows at once; the nearest memories are drawn." }
        }
        (drawing(&answer))
        h2 { "Links" }
        @if answer.edges.is_empty() {
            p class="empty" { "This memory has no links yet." }
        } @else {
            ul class="links" {
                @for edge in &answer.edges {
                    li {
                        (label_of(&answer, edge.source_id)) " — " em { (edge.description) } " — " (label_of(&answer, edge.target_id))
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        "Graph",
        Some((&signed_in.session).into()),
        body,
    )))
}

fn label_of(answer: &NeighborhoodAnswer, id: MemoryId) -> Markup {
    let text = answer
        .memories
        .iter()
        .find(|m| m.memory.id == id)
        .map(|m| short(&m.memory.content, 60))
        .unwrap_or_else(|| id.to_string());
    html! { a href=(graph_href(&id)) { (text) } }
}

/// The SVG: edges first (under the nodes), then each node as a link with its text as the
/// tooltip and a short label.
fn drawing(answer: &NeighborhoodAnswer) -> Markup {
    let nodes: Vec<GraphNode<MemoryId>> = answer
        .memories
        .iter()
        .map(|m| GraphNode {
            id: m.memory.id,
            hops: if m.memory.id == answer.center_id {
                0
            } else {
                m.hops.max(1)
            },
        })
        .collect();
    let edges: Vec<(MemoryId, MemoryId)> = answer
        .edges
        .iter()
        .map(|e| (e.source_id, e.target_id))
        .collect();
    let placed = radial_layout(&nodes, &edges, CANVAS);
    let at = |id: MemoryId| placed.iter().find(|p| p.id == id).map(|p| (p.x, p.y));
    let viewbox = format!("0 0 {} {}", CANVAS.width, CANVAS.height);
    html! {
        svg class="graph" id="graph" xmlns="http://www.w3.org/2000/svg" viewBox=(viewbox)
            role="img" aria-label="The memory's neighbourhood" {
            @for edge in &answer.edges {
                @if let (Some((x1, y1)), Some((x2, y2))) = (at(edge.source_id), at(edge.target_id)) {
                    line class="edge" x1=(fmt(x1)) y1=(fmt(y1)) x2=(fmt(x2)) y2=(fmt(y2)) {
                        title { (edge.description) }
                    }
                }
            }
            @for node in &placed {
                @let content = answer.memories.iter().find(|m| m.memory.id == node.id).map(|m| m.memory.content.as_str()).unwrap_or_default();
                a class="node" href=(graph_href(&node.id)) data-memory-id=(node.id.to_string()) {
                    title { (short(content, 300)) }
                    circle class=(if node.hops == 0 { "centre" } else { "neighbour" })
                        cx=(fmt(node.x)) cy=(fmt(node.y)) r=(if node.hops == 0 { "16" } else { "11" }) {}
                    text x=(fmt(node.x)) y=(fmt(node.y + 30.0)) text-anchor="middle" { (short(content, 24)) }
                }
            }
        }
    }
}

fn fmt(value: f64) -> String {
    format!("{value:.1}")
}
