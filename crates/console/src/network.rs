//! The network plan drawn as SVG: tiers as boxes in columns by how far they are from the
//! internet along the plan's promised flows, flows as arrows (promised: solid; ruled out:
//! dashed), each labelled with its port.

use std::collections::{BTreeMap, HashMap};

use maud::{Markup, html};
use membrain_netsec::Topology;
use membrain_netsec::model::Placement;

const BOX_WIDTH: f64 = 150.0;
const BOX_HEIGHT: f64 = 44.0;
const COLUMN_GAP: f64 = 90.0;
const ROW_GAP: f64 = 36.0;
const MARGIN: f64 = 30.0;

/// Each tier's column: its distance in promised flows from a tier nothing flows into (the
/// internet, usually); tiers no flow reaches go last.
fn columns(topology: &Topology) -> BTreeMap<usize, Vec<String>> {
    let names: Vec<String> = topology.tiers.iter().map(|t| t.name.0.clone()).collect();
    let mut depth: HashMap<String, usize> = HashMap::new();
    let targets: Vec<&str> = topology.expected.iter().map(|f| f.to.0.as_str()).collect();
    for name in &names {
        if !targets.contains(&name.as_str()) {
            depth.insert(name.clone(), 0);
        }
    }
    // Longest-path relaxation, bounded by the number of tiers (cycles cannot loop forever).
    for _ in 0..names.len() {
        for flow in &topology.expected {
            if let Some(&from) = depth.get(&flow.from.0) {
                let next = from + 1;
                let entry = depth.entry(flow.to.0.clone()).or_insert(next);
                if *entry < next && next <= names.len() {
                    *entry = next;
                }
            }
        }
    }
    let last = depth.values().copied().max().unwrap_or(0) + 1;
    let mut columns: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for name in names {
        let column = depth.get(&name).copied().unwrap_or(last);
        columns.entry(column).or_default().push(name);
    }
    columns
}

/// The diagram of `topology`'s tiers and flows.
pub fn plan_diagram(topology: &Topology) -> Markup {
    let columns = columns(topology);
    let mut at: HashMap<String, (f64, f64)> = HashMap::new();
    let rows = columns.values().map(Vec::len).max().unwrap_or(1);
    for (index, (_, tiers)) in columns.iter().enumerate() {
        for (row, name) in tiers.iter().enumerate() {
            let x = MARGIN + index as f64 * (BOX_WIDTH + COLUMN_GAP);
            let y = MARGIN + row as f64 * (BOX_HEIGHT + ROW_GAP);
            at.insert(name.clone(), (x, y));
        }
    }
    let width = MARGIN * 2.0 + columns.len() as f64 * (BOX_WIDTH + COLUMN_GAP) - COLUMN_GAP;
    let height = MARGIN * 2.0 + rows as f64 * (BOX_HEIGHT + ROW_GAP) - ROW_GAP;
    let viewbox = format!("0 0 {width:.0} {height:.0}");
    let arrow = |from: &str, to: &str| -> Option<(f64, f64, f64, f64)> {
        let (fx, fy) = at.get(from)?;
        let (tx, ty) = at.get(to)?;
        let (x1, x2) = if tx >= fx {
            (fx + BOX_WIDTH, *tx)
        } else {
            (*fx, tx + BOX_WIDTH)
        };
        Some((x1, fy + BOX_HEIGHT / 2.0, x2, ty + BOX_HEIGHT / 2.0))
    };
    html! {
        svg class="network" id="network" xmlns="http://www.w3.org/2000/svg" viewBox=(viewbox)
            role="img" aria-label="The network plan's tiers and flows" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" {}
                }
            }
            @for (flows, class) in [(&topology.expected, "flow allowed"), (&topology.forbidden, "flow forbidden")] {
                @for flow in flows {
                    @if let Some((x1, y1, x2, y2)) = arrow(&flow.from.0, &flow.to.0) {
                        g class=(class) {
                            title { (flow.from.0) " → " (flow.to.0) " " (flow.protocol.aws_name()) "/" (flow.port) ": " (flow.why) }
                            line x1=(f(x1)) y1=(f(y1)) x2=(f(x2)) y2=(f(y2)) marker-end="url(#arrow)" {}
                            text x=(f((x1 + x2) / 2.0)) y=(f((y1 + y2) / 2.0 - 5.0)) text-anchor="middle" { (flow.port) }
                        }
                    }
                }
            }
            @for tier in &topology.tiers {
                @if let Some((x, y)) = at.get(&tier.name.0) {
                    g class=(tier_class(tier.placement)) {
                        title { (tier.description) }
                        rect x=(f(*x)) y=(f(*y)) width=(f(BOX_WIDTH)) height=(f(BOX_HEIGHT)) rx="6" {}
                        text x=(f(x + BOX_WIDTH / 2.0)) y=(f(y + BOX_HEIGHT / 2.0 + 5.0)) text-anchor="middle" { (tier.name.0) }
                    }
                }
            }
        }
    }
}

fn tier_class(placement: Placement) -> &'static str {
    match placement {
        Placement::Internet => "tier internet",
        Placement::Vpc => "tier vpc",
        Placement::AwsService => "tier aws",
    }
}

fn f(value: f64) -> String {
    format!("{value:.1}")
}

#[cfg(test)]
mod tests {
    use membrain_netsec::profiles::Profile;

    use super::*;

    #[test]
    fn every_tier_of_both_profiles_is_drawn_with_its_flows() {
        for profile in [Profile::Alb, Profile::Gateway] {
            let topology = profile.default_topology();
            let svg = plan_diagram(&topology).into_string();
            for tier in &topology.tiers {
                assert!(
                    svg.contains(&format!(">{}</text>", tier.name.0)),
                    "{}",
                    tier.name.0
                );
            }
            let drawn = svg.matches("<g class=\"flow").count();
            assert_eq!(drawn, topology.expected.len() + topology.forbidden.len());
            assert!(!svg.contains("style="));
        }
    }
}
