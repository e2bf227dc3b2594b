//! `GET /console/network`: the deployment's network plan (the configured profile's tiers and
//! flows) as a diagram.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::ConsoleState;
use crate::layout::page;
use crate::network::plan_diagram;
use crate::security::{ConsoleQuery, SignedIn, html_response};

#[derive(Debug, Default, serde::Deserialize)]
pub struct NetworkParams {
    /// Any value draws the ruled-out flows too.
    #[serde(default)]
    refused: Option<String>,
}

pub async fn plan(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    ConsoleQuery(params): ConsoleQuery<NetworkParams>,
) -> Response {
    let profile = state.settings.network_profile;
    let topology = profile.default_topology();
    let refused_too = params.refused.is_some_and(|r| !r.is_empty());
    let body = html! {
        p {
            "The " strong { (profile.name()) } " profile's plan (" code { "membrain network plan --profile " (profile.name()) } "): "
            "each tier, and the flows the plan promises"
            @if refused_too { " (solid) and rules out (dashed)." } @else { "." }
        }
        p {
            @if refused_too {
                a href="/console/network" { "Show only the promised flows" }
            } @else {
                a href="/console/network?refused=1" id="show-refused" { "Show the refused flows too" }
            }
        }
        (plan_diagram(&topology, refused_too))
        h2 { "Flows" }
        table {
            thead { tr { th { "From" } th { "To" } th { "Port" } th { "" } th { "Why" } } }
            tbody {
                @for flow in &topology.expected {
                    tr { td { (flow.from.0) } td { (flow.to.0) } td { (flow.protocol.aws_name()) " " (flow.port) } td class="allowed" { "allowed" } td { (flow.why) } }
                }
                @for flow in &topology.forbidden {
                    tr { td { (flow.from.0) } td { (flow.to.0) } td { (flow.protocol.aws_name()) " " (flow.port) } td class="forbidden" { "refused" } td { (flow.why) } }
                }
            }
        }
    };
    html_response(page("Network", Some((&signed_in.session).into()), body))
}
