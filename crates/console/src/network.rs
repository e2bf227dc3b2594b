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
const ROW_GAP: f64 = 56.0;
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

/// The flows between one pair of tiers, promised or ruled out, drawn as one arrow.
struct FlowGroup<'a> {
    from: &'a str,
    to: &'a str,
    allowed: bool,
    /// `tcp/443`, … in the plan's order, each once.
    ports: Vec<String>,
    /// The flows' reasons, for the arrow's tooltip.
    why: Vec<&'a str>,
}

fn flow_groups(topology: &Topology, refused_too: bool) -> Vec<FlowGroup<'_>> {
    let mut groups: Vec<FlowGroup<'_>> = Vec::new();
    let refused: &[_] = if refused_too {
        &topology.forbidden
    } else {
        &[]
    };
    let flows = topology
        .expected
        .iter()
        .map(|f| (f, true))
        .chain(refused.iter().map(|f| (f, false)));
    for (flow, allowed) in flows {
        let port = format!("{}/{}", flow.protocol.aws_name(), flow.port);
        let index = groups
            .iter()
            .position(|g| g.from == flow.from.0 && g.to == flow.to.0 && g.allowed == allowed);
        let group = match index {
            Some(index) => &mut groups[index],
            None => {
                groups.push(FlowGroup {
                    from: &flow.from.0,
                    to: &flow.to.0,
                    allowed,
                    ports: Vec::new(),
                    why: Vec::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        if !group.ports.contains(&port) {
            group.ports.push(port);
        }
        group.why.push(&flow.why);
    }
    groups
}

/// An arrow's path from box `from` to box `to` (their top-left corners): straight between
/// neighbouring boxes of one row, otherwise a curve, bowed one way for promised flows and the
/// other for ruled-out ones so the two never lie on each other. Returns the path and where its
/// label goes.
fn arrow_path(from: (f64, f64), to: (f64, f64), allowed: bool) -> (String, (f64, f64)) {
    let ((fx, fy), (tx, ty)) = (from, to);
    let (x1, y1, x2, y2) = if (fx - tx).abs() < 1.0 {
        // One column: from the bottom of the upper box to the top of the lower.
        let cx = fx + BOX_WIDTH / 2.0;
        if fy < ty {
            (cx, fy + BOX_HEIGHT, cx, ty)
        } else {
            (cx, fy, cx, ty + BOX_HEIGHT)
        }
    } else if tx > fx {
        (
            fx + BOX_WIDTH,
            fy + BOX_HEIGHT / 2.0,
            tx,
            ty + BOX_HEIGHT / 2.0,
        )
    } else {
        (
            fx,
            fy + BOX_HEIGHT / 2.0,
            tx + BOX_WIDTH,
            ty + BOX_HEIGHT / 2.0,
        )
    };
    let neighbours =
        (fy - ty).abs() < 1.0 && ((tx - fx).abs() - (BOX_WIDTH + COLUMN_GAP)).abs() < 1.0;
    let bow = match (allowed, neighbours) {
        (true, true) => 0.0,
        (true, false) => 28.0,
        (false, _) => -36.0,
    };
    let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let length = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt().max(1.0);
    // The control point: off the middle, at right angles to the line.
    let (cx, cy) = (
        mx - (y2 - y1) / length * bow * 2.0,
        my + (x2 - x1) / length * bow * 2.0,
    );
    let label = (
        0.25 * x1 + 0.5 * cx + 0.25 * x2,
        0.25 * y1 + 0.5 * cy + 0.25 * y2 - 4.0,
    );
    let path = format!(
        "M {} {} Q {} {} {} {}",
        f(x1),
        f(y1),
        f(cx),
        f(cy),
        f(x2),
        f(y2)
    );
    (path, label)
}

/// The diagram of `topology`'s tiers and promised flows, and its ruled-out flows when
/// `refused_too` (they are many: every tier it skips).
pub fn plan_diagram(topology: &Topology, refused_too: bool) -> Markup {
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
    let groups = flow_groups(topology, refused_too);
    html! {
        svg class="network" id="network" xmlns="http://www.w3.org/2000/svg" viewBox=(viewbox)
            role="img" aria-label="The network plan's tiers and flows" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" {}
                }
            }
            @for group in &groups {
                @if let (Some(from), Some(to)) = (at.get(group.from), at.get(group.to)) {
                    @let (path, (lx, ly)) = arrow_path(*from, *to, group.allowed);
                    g class=(if group.allowed { "flow allowed" } else { "flow forbidden" }) {
                        title {
                            (group.from) " → " (group.to) " " (group.ports.join(", "))
                            (if group.allowed { " (allowed): " } else { " (refused): " })
                            (group.why.join("; "))
                        }
                        path d=(path) fill="none" marker-end="url(#arrow)" {}
                        text x=(f(lx)) y=(f(ly)) text-anchor="middle" { (group.ports.iter().map(|p| p.trim_start_matches("tcp/")).collect::<Vec<_>>().join(", ")) }
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
            for refused_too in [false, true] {
                let svg = plan_diagram(&topology, refused_too).into_string();
                for tier in &topology.tiers {
                    assert!(
                        svg.contains(&format!(">{}</text>", tier.name.0)),
                        "{}",
                        tier.name.0
                    );
                }
                // One arrow per pair of tiers and kind of flow, each with its ports.
                let drawn = svg.matches("<g class=\"flow").count();
                assert_eq!(drawn, flow_groups(&topology, refused_too).len());
                assert!(drawn > 0);
                assert_eq!(svg.contains("flow forbidden"), refused_too);
                for flow in &topology.expected {
                    assert!(svg.contains(&format!("{}/{}", flow.protocol.aws_name(), flow.port)));
                }
                assert!(!svg.contains("style="));
            }
        }
    }
}
