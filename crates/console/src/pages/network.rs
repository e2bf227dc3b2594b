//! `GET /console/network`: the deployment's network plan (the configured profile's tiers and
//! flows) as a diagram.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::ConsoleState;
use crate::layout::page;
use crate::network::plan_diagram;
use crate::security::{SignedIn, html_response};

pub async fn plan(State(state): State<ConsoleState>, signed_in: SignedIn) -> Response {
    let profile = state.settings.network_profile;
    let topology = profile.default_topology();
    let body = html! {
        p {
            "The " strong { (profile.name()) } " profile's plan (" code { "membrain network plan --profile " (profile.name()) } "): "
            "each tier, and the flows the plan promises (solid) and rules out (dashed)."
        }
        (plan_diagram(&topology))
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
