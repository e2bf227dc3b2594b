//! The tiers and expected flows of a topology as a diagram: Mermaid (which GitHub renders inside
//! Markdown) or Graphviz dot.
//!
//! Tiers are nodes, grouped by where they sit (the internet, or the VPC with its CIDR: the model
//! has no subnets per tier); every expected flow is an edge labelled with its protocol and port,
//! and flows between the same two tiers share one edge (`tcp/80, tcp/443`).
//!
//! Forbidden flows are not drawn. A diagram is read as "what talks to what": a dashed edge is
//! still an edge, and the alb profile alone forbids twelve flows, which would outnumber the
//! seven real ones. They stay in the `plan` table and in `verify`, where each is checked.
//!
//! Node ids are `t0`, `t1`… (the tier's position), never topology text, so no name can break
//! the syntax; every label is escaped for its target whether or not the topology was validated
//! ([`mermaid_text`], [`dot_text`]).

use std::fmt::Write;

use crate::Topology;
use crate::model::{Flow, Placement, Protocol, Tier};

/// The two diagram languages `membrain network plan --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiagramFormat {
    Mermaid,
    Dot,
}

/// `topology` as a diagram in `format`; ends with a newline.
pub fn diagram(topology: &Topology, format: DiagramFormat) -> String {
    let layout = Layout::of(topology);
    match format {
        DiagramFormat::Mermaid => mermaid(&layout),
        DiagramFormat::Dot => dot(&layout),
    }
}

/// What both languages draw: zones of tiers, and edges between tier positions.
struct Layout<'a> {
    name: &'a str,
    zones: Vec<Zone<'a>>,
    edges: Vec<Edge>,
}

struct Zone<'a> {
    /// An identifier of ASCII letters and `_` only.
    id: &'static str,
    label: String,
    /// (position in `topology.tiers`, tier).
    tiers: Vec<(usize, &'a Tier)>,
}

struct Edge {
    from: usize,
    to: usize,
    /// `tcp/443`, one per flow; built from protocol names and numbers only.
    labels: Vec<String>,
}

impl<'a> Layout<'a> {
    fn of(topology: &'a Topology) -> Self {
        let in_zone = |placement: Placement| -> Vec<(usize, &'a Tier)> {
            topology
                .tiers
                .iter()
                .enumerate()
                .filter(|(_, tier)| tier.placement == placement)
                .collect()
        };
        let zones = vec![
            Zone {
                id: "internet",
                label: "Internet".to_owned(),
                tiers: in_zone(Placement::Internet),
            },
            Zone {
                id: "vpc",
                label: format!("VPC {}", topology.vpc.cidr),
                tiers: in_zone(Placement::Vpc),
            },
            Zone {
                id: "aws_services",
                label: "AWS services (gateway endpoints)".to_owned(),
                tiers: in_zone(Placement::AwsService),
            },
        ]
        .into_iter()
        .filter(|zone| !zone.tiers.is_empty())
        .collect();
        let position = |name: &str| topology.tiers.iter().position(|t| t.name.0 == name);
        let mut edges: Vec<Edge> = Vec::new();
        for flow in &topology.expected {
            // An unvalidated topology may name a tier that does not exist: nothing to draw.
            let (Some(from), Some(to)) = (position(&flow.from.0), position(&flow.to.0)) else {
                continue;
            };
            let label = flow_label(flow);
            match edges.iter_mut().find(|e| e.from == from && e.to == to) {
                Some(edge) if edge.labels.contains(&label) => {}
                Some(edge) => edge.labels.push(label),
                None => edges.push(Edge {
                    from,
                    to,
                    labels: vec![label],
                }),
            }
        }
        Self {
            name: &topology.name,
            zones,
            edges,
        }
    }
}

/// `tcp/443`, `udp/53`, `icmp`, `all`.
fn flow_label(flow: &Flow) -> String {
    match flow.protocol {
        Protocol::Tcp | Protocol::Udp => format!("{}/{}", flow.protocol.aws_name(), flow.port),
        Protocol::Icmp => "icmp".to_owned(),
        Protocol::All => "all".to_owned(),
    }
}

fn mermaid(layout: &Layout) -> String {
    let mut out = String::from("flowchart LR\n");
    // `%%` starts a Mermaid comment, which runs to the end of the line.
    let _ = writeln!(out, "  %% membrain network: {}", mermaid_text(layout.name));
    for zone in &layout.zones {
        let _ = writeln!(
            out,
            "  subgraph {}[\"{}\"]",
            zone.id,
            mermaid_text(&zone.label)
        );
        for (position, tier) in &zone.tiers {
            let _ = writeln!(
                out,
                "    t{position}[\"{}<br/>{}\"]",
                mermaid_text(&tier.name.0),
                mermaid_text(&tier.description)
            );
        }
        out.push_str("  end\n");
    }
    for edge in &layout.edges {
        let _ = writeln!(
            out,
            "  t{} -->|\"{}\"| t{}",
            edge.from,
            edge.labels.join(", "),
            edge.to
        );
    }
    out
}

fn dot(layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_text(layout.name));
    out.push_str("  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for zone in &layout.zones {
        let _ = writeln!(out, "  subgraph cluster_{} {{", zone.id);
        let _ = writeln!(out, "    label=\"{}\";", dot_text(&zone.label));
        for (position, tier) in &zone.tiers {
            let _ = writeln!(
                out,
                "    t{position} [label=\"{}\\n{}\"];",
                dot_text(&tier.name.0),
                dot_text(&tier.description)
            );
        }
        out.push_str("  }\n");
    }
    for edge in &layout.edges {
        let _ = writeln!(
            out,
            "  t{} -> t{} [label=\"{}\"];",
            edge.from,
            edge.to,
            edge.labels.join(", ")
        );
    }
    out.push_str("}\n");
    out
}

/// `text` inside a quoted Mermaid label (`["…"]`) or a `%%` comment: letters, digits, spaces and
/// `. , : / ( ) + - _ '` stay; everything else (quotes, `#`, `<`, `>`, `|`, brackets, line breaks,
/// any non-ASCII) becomes a numeric entity code, `#34;`, which Mermaid shows as the character
/// and never reads as syntax or markup.
pub(crate) fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || " .,:/()+-_'".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", u32::from(c));
        }
    }
    out
}

/// `text` inside a double-quoted dot string: `\` and `"` escaped, and control characters written
/// as visible escapes (`\n` shown as the two characters), so that nothing ends the string or
/// becomes one of dot's label escapes (`\n`, `\l`, `\N`…).
pub(crate) fn dot_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => {
                for escaped in c.escape_default() {
                    if escaped == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(escaped);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::Profile;

    fn topology(profile: Profile) -> Topology {
        profile.default_topology()
    }

    #[test]
    fn mermaid_draws_zones_tiers_and_expected_flows_only() {
        let text = diagram(&topology(Profile::Alb), DiagramFormat::Mermaid);
        for line in [
            "flowchart LR",
            "  subgraph internet[\"Internet\"]",
            "    t0[\"internet<br/>Any address on the internet\"]",
            "  subgraph vpc[\"VPC 10.0.0.0/16\"]",
            "    t5[\"database<br/>The PostgreSQL database (RDS)\"]",
            "  t0 -->|\"tcp/80, tcp/443\"| t1",
            "  t4 -->|\"tcp/5432\"| t5",
            "  subgraph aws_services[\"AWS services (gateway endpoints)\"]",
            "    t7[\"s3<br/>Amazon S3 through its gateway endpoint (image layers)\"]",
            "  t2 -->|\"tcp/443\"| t7",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        // Eleven expected flows over nine pairs of tiers (the chain's five, and each task tier
        // to the endpoints and to S3); the forbidden ones are not drawn.
        assert_eq!(text.matches("-->").count(), 9, "{text}");
        assert!(!text.contains("t0 -->|\"tcp/8000\"|"), "{text}");
    }

    #[test]
    fn dot_draws_clusters_and_labelled_edges() {
        let text = diagram(&topology(Profile::Gateway), DiagramFormat::Dot);
        for line in [
            "digraph \"gateway\" {",
            "  subgraph cluster_vpc {",
            "    label=\"VPC 10.0.0.0/16\";",
            "    t1 [label=\"vpc-link\\nAPI Gateway's VPC Link interfaces\"];",
            "    t2 [label=\"nlb\\nThe internal Network Load Balancer the VPC Link targets\"];",
            "  t1 -> t2 [label=\"tcp/8080\"];",
            "  t2 -> t3 [label=\"tcp/8080\"];",
            "  t3 -> t4 [label=\"tcp/443\"];",
            "  t3 -> t5 [label=\"tcp/5432\"];",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("}\n"));
        assert_eq!(text.matches(" -> ").count(), 4, "{text}");
    }

    #[test]
    fn hostile_text_is_inert_in_both_languages() {
        let mut plan = topology(Profile::Alb);
        plan.name = "x\"]\n}\nevil".into();
        plan.tiers[1].description = "a\"] --> b[\"#x; <script> |x| \\n\n%% end".into();
        plan.tiers[2].name.0 = "m\"\\".into();
        plan.expected[0].to.0 = "nowhere".into();
        let mermaid = diagram(&plan, DiagramFormat::Mermaid);
        // Every quote in the output is one the renderer wrote: two per label.
        for line in mermaid.lines().filter(|l| l.contains('[')) {
            assert_eq!(line.matches('"').count(), 2, "{line}");
        }
        assert!(mermaid.contains("#34;#93; --#62; b#91;#34;#35;x#59; #60;script#62;"));
        assert!(!mermaid.contains("\nevil") && !mermaid.contains("%% end"));
        let dot = diagram(&plan, DiagramFormat::Dot);
        assert!(
            dot.starts_with("digraph \"x\\\"]\\\\n}\\\\nevil\" {\n"),
            "{dot}"
        );
        assert!(dot.contains("t2 [label=\"m\\\"\\\\\\n"), "{dot}");
        assert!(!dot.contains("\n%% end"));
        // The flow into an unknown tier is skipped, not drawn to a node that does not exist.
        assert!(!dot.contains("nowhere") && !mermaid.contains("nowhere"));
    }

    #[test]
    fn escapes() {
        assert_eq!(mermaid_text("a-b_c (x): 1/2, +"), "a-b_c (x): 1/2, +");
        assert_eq!(mermaid_text("\"#<>|\n"), "#34;#35;#60;#62;#124;#10;");
        assert_eq!(mermaid_text("é"), "#233;");
        assert_eq!(dot_text("a\"b\\c\n"), "a\\\"b\\\\c\\\\n");
    }
}
