//! `membrain network plan | render | apply | verify | diagnose` (`emulate | probe` live in
//! `network_emulate.rs`): tables for people, `--json` for scripts, `plan --format mermaid|dot`
//! for diagrams. The decisions are made in `membrain-netsec`; this module only chooses the topology,
//! fetches live groups, and prints.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use membrain_netsec::aws_json::{live_topology, parse_describe};
use membrain_netsec::diagnose::{Diagnosis, diagnose};
use membrain_netsec::eval::Direction;
use membrain_netsec::model::TextKind;
use membrain_netsec::profiles::{GatewayTsStore, Profile, ProfileOptions};
use membrain_netsec::render::diagram;
use membrain_netsec::verify::{FlowKind, Report, Severity, verify};
use membrain_netsec::{Cidr, EndpointKind, Peer, Protocol, Rule, SecurityGroup, Topology};

use crate::cli::{
    DiagramFormat, GatewayTsStoreName, LiveArgs, NetworkCommand, ProfileName, TopologyArgs,
};
use crate::output::say;

pub async fn run(command: NetworkCommand) -> Result<()> {
    match command {
        NetworkCommand::Plan {
            source,
            json,
            format,
        } => {
            let plan = topology(&source)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&plan)?);
            } else if let Some(format) = format {
                let format = match format {
                    DiagramFormat::Mermaid => diagram::DiagramFormat::Mermaid,
                    DiagramFormat::Dot => diagram::DiagramFormat::Dot,
                };
                write_output(&diagram::diagram(&plan, format), None)?;
            } else {
                print_plan(&plan);
            }
            Ok(())
        }
        NetworkCommand::Render {
            source,
            format,
            output,
        } => {
            let plan = topology(&source)?;
            super::network_aws::render(&plan, format, output.as_deref())
        }
        NetworkCommand::Apply {
            source,
            aws,
            dry_run,
            json,
        } => {
            let plan = topology(&source)?;
            super::network_aws::apply(&plan, &aws, dry_run, json).await
        }
        NetworkCommand::Verify {
            source,
            live,
            strict,
            json,
        } => {
            let plan = topology(&source)?;
            let actual = actual(&plan, &live).await?;
            let report = verify(&plan, &actual);
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            let (violations, warnings) = (report.violations(), report.warnings());
            if violations > 0 {
                bail!("verification failed: {violations} violation(s), {warnings} warning(s)");
            }
            if strict && warnings > 0 {
                bail!("verification failed with --strict: {warnings} warning(s)");
            }
            Ok(())
        }
        NetworkCommand::Diagnose {
            source,
            live,
            from,
            to,
            port,
            protocol,
            json,
        } => {
            let plan = topology(&source)?;
            let actual = actual(&plan, &live).await?;
            let protocol = Protocol::parse("--protocol", &protocol)?;
            let diagnosis = diagnose(&plan, &actual, &from, &to, protocol, port)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&diagnosis)?);
            } else {
                print_diagnosis(&diagnosis, &actual);
            }
            match diagnosis.planned {
                Some("expected") if !diagnosis.reachable => {
                    bail!("the plan expects this flow but it is blocked")
                }
                // Open groups are the fault even where a missing listener hides it today.
                Some("forbidden") if diagnosis.allowed => {
                    bail!("the plan forbids this flow but its groups let it through")
                }
                _ => Ok(()),
            }
        }
        NetworkCommand::Emulate(args) => super::network_emulate::emulate(args).await,
        NetworkCommand::Probe(args) => super::network_emulate::probe(args).await,
    }
}

/// The topology the options name: a file, or a built-in profile with the seeds' variables.
pub fn topology(args: &TopologyArgs) -> Result<Topology> {
    if let Some(path) = &args.topology {
        return Topology::load(path).map_err(anyhow::Error::from);
    }
    let profile = match args.profile.unwrap_or(ProfileName::Alb) {
        ProfileName::Alb => Profile::Alb,
        ProfileName::Gateway => Profile::Gateway,
    };
    let mut options = ProfileOptions::for_profile(profile);
    if let Some(cidr) = &args.vpc_cidr {
        options.vpc_cidr = Cidr::parse("--vpc-cidr", cidr)?;
    }
    options.create_vpc = args.create_vpc.unwrap_or(options.create_vpc);
    options.enable_vpc_endpoints = args
        .enable_vpc_endpoints
        .unwrap_or(options.enable_vpc_endpoints);
    if let Some(store) = args.gateway_ts_store {
        if profile != Profile::Gateway {
            bail!(
                "--gateway-ts-store applies to --profile gateway only: the alb API keeps time \
                 series in its own PostgreSQL"
            );
        }
        options.gateway_ts_store = match store {
            GatewayTsStoreName::Postgres => GatewayTsStore::Postgres,
            GatewayTsStoreName::Timestream => GatewayTsStore::Timestream,
        };
    }
    if args.seed_vpc_ingress {
        if profile != Profile::Gateway {
            bail!(
                "--seed-vpc-ingress applies to --profile gateway only: the alb tasks admit their \
                 load balancers' groups"
            );
        }
        options.seed_vpc_ingress = true;
    }
    if let Some(cell) = args.timestream_cell {
        if options.gateway_ts_store != GatewayTsStore::Timestream {
            bail!(
                "--timestream-cell names the Timestream endpoints, which the plan has only with \
                 --gateway-ts-store timestream"
            );
        }
        options.timestream_cell = cell;
    }
    for (value, field, name) in [
        (args.mcp_port, &mut options.mcp_port, "--mcp-port"),
        (args.api_port, &mut options.api_port, "--api-port"),
        (
            args.database_port,
            &mut options.database_port,
            "--database-port",
        ),
    ] {
        if let Some(port) = value {
            if port == 0 {
                bail!("{name}: port 0 is outside 1-65535");
            }
            *field = port;
        }
    }
    let plan = profile.topology(&options);
    plan.validate().map_err(|errors| {
        anyhow::anyhow!(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    Ok(plan)
}

/// The groups to check: from an export file, from the AWS API, or the plan itself.
async fn actual(plan: &Topology, live: &LiveArgs) -> Result<Topology> {
    if let Some(path) = &live.from_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let described =
            parse_describe(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut actual = live_topology(plan, &described.security_groups)?;
        actual.name_prefix_lists(&prefix_list_flags(&live.prefix_lists)?);
        return Ok(actual);
    }
    if live.live || live.aws.endpoint_url.is_some() || live.aws.vpc_id.is_some() {
        let (groups, prefix_lists) =
            super::network_aws::read_live(&live.aws, &plan.service_prefix_lists()).await?;
        let mut actual = live_topology(plan, &groups)?;
        actual.name_prefix_lists(&prefix_lists);
        return Ok(actual);
    }
    Ok(plan.clone())
}

/// `--prefix-list s3=pl-63a5400a` flags as service → id.
fn prefix_list_flags(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for flag in flags {
        let Some((service, id)) = flag.split_once('=') else {
            bail!("--prefix-list {flag:?}: write SERVICE=ID, e.g. s3=pl-63a5400a");
        };
        TextKind::EndpointService.check("--prefix-list", service)?;
        TextKind::PrefixListId.check("--prefix-list", id)?;
        ids.insert(service.to_owned(), id.to_owned());
    }
    Ok(ids)
}

fn table(header: [&str; 5]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header);
    table
}

fn peer_label(peer: &Peer, topology: &Topology) -> String {
    match peer {
        Peer::Group(id) => match topology.group(id) {
            Some(group) => format!("{} ({})", group.title, group.id),
            None => format!("group {id}"),
        },
        other => other.to_string(),
    }
}

fn rules_table(rules: &[Rule], direction: Direction, topology: &Topology) -> Table {
    let peer_column = match direction {
        Direction::Ingress => "Source",
        Direction::Egress => "Destination",
    };
    let mut table = table(["Type", "Protocol", "Port Range", peer_column, "Description"]);
    for rule in rules {
        // `+`: a rule Membrain adds to the seed's tables; the plan's last section says why.
        let mark = if rule.beyond_seed.is_some() { "+ " } else { "" };
        table.add_row([
            format!("{mark}{}", rule.type_name()),
            rule.protocol_label().to_owned(),
            rule.port_label(),
            peer_label(&rule.peer, topology),
            rule.description.clone(),
        ]);
    }
    table
}

fn print_group(number: usize, group: &SecurityGroup, topology: &Topology) {
    say!(
        "## {number}. {} — {} ({})",
        group.title,
        group.name,
        group.id
    );
    say!("{}", group.description);
    say!("\nInbound rules");
    if group.ingress.is_empty() {
        say!("  (none)");
    } else {
        say!(
            "{}",
            rules_table(&group.ingress, Direction::Ingress, topology)
        );
    }
    say!("\nOutbound rules");
    if group.egress.is_empty() {
        say!("  (none: the default allow-all egress is revoked)");
    } else {
        say!(
            "{}",
            rules_table(&group.egress, Direction::Egress, topology)
        );
    }
    say!();
}

fn print_plan(plan: &Topology) {
    say!(
        "# Network plan: {} (VPC {}{})\n",
        plan.name,
        plan.vpc.cidr,
        if plan.vpc.create {
            ", created"
        } else {
            ", existing VPC_ID"
        }
    );
    for (i, group) in plan.groups.iter().enumerate() {
        print_group(i + 1, group, plan);
    }
    if !plan.endpoints.is_empty() {
        say!("## VPC endpoints");
        for endpoint in &plan.endpoints {
            match endpoint.kind {
                EndpointKind::Interface => {
                    let groups: Vec<&str> = endpoint.groups.iter().map(|g| g.0.as_str()).collect();
                    say!(
                        "  com.amazonaws.<region>.{}  interface, private DNS {}, groups {}",
                        endpoint.service,
                        if endpoint.private_dns { "on" } else { "off" },
                        groups.join(", ")
                    );
                }
                EndpointKind::Gateway => say!(
                    "  com.amazonaws.<region>.{}  gateway, in the private route tables; rules \
                     name its prefix list",
                    endpoint.service
                ),
            }
        }
        say!();
    }
    print_beyond_seed(plan);
    say!("## Flows");
    let mut flows = table(["", "From", "To", "Port", "Why"]);
    for (mark, list) in [("allow", &plan.expected), ("deny", &plan.forbidden)] {
        for flow in list {
            flows.add_row([
                mark.to_owned(),
                flow.from.0.clone(),
                flow.to.0.clone(),
                format!("{}/{}", flow.protocol.aws_name(), flow.port),
                flow.why.clone(),
            ]);
        }
    }
    say!("{flows}");
}

/// The rules Membrain adds to the seed's tables (marked `+` above), grouped by the reason.
fn print_beyond_seed(plan: &Topology) {
    let mut reasons: Vec<(&str, Vec<String>)> = Vec::new();
    for group in &plan.groups {
        for (direction, rules) in [("inbound", &group.ingress), ("outbound", &group.egress)] {
            for rule in rules {
                let Some(why) = rule.beyond_seed.as_deref() else {
                    continue;
                };
                let line = format!(
                    "{} {direction} {} {} {}",
                    group.id,
                    rule.type_name(),
                    rule.port_label(),
                    peer_label(&rule.peer, plan)
                );
                match reasons.iter_mut().find(|(reason, _)| *reason == why) {
                    Some((_, lines)) => lines.push(line),
                    None => reasons.push((why, vec![line])),
                }
            }
        }
    }
    if reasons.is_empty() {
        return;
    }
    say!("## Beyond the seed (rules marked +)");
    for (why, lines) in reasons {
        say!("Because {why}:");
        for line in lines {
            say!("  + {line}");
        }
    }
    say!();
}

fn print_report(report: &Report) {
    let mut flows = table(["Result", "Kind", "Flow", "Port", "Detail"]);
    for check in &report.flows {
        let result = match (check.ok, check.kind) {
            (false, _) => "VIOLATION",
            (true, FlowKind::Unplanned) => "warning",
            (true, _) => "ok",
        };
        let detail = match (&check.verdict, check.allowed) {
            (membrain_netsec::eval::Verdict::Denied { missing }, _) => {
                let parts: Vec<String> = missing
                    .iter()
                    .map(|m| format!("no {} rule on {}", m.direction.name(), m.group))
                    .collect();
                format!("blocked: {}", parts.join(", "))
            }
            (membrain_netsec::eval::Verdict::Allowed { egress, ingress }, _) => {
                let by: Vec<String> = egress
                    .iter()
                    .chain(ingress)
                    .map(|r| format!("{} {}", r.group, r.direction.name()))
                    .collect();
                if by.is_empty() {
                    "allowed".into()
                } else {
                    format!("allowed by {}", by.join(" + "))
                }
            }
        };
        let kind = match check.kind {
            FlowKind::Expected => "expected",
            FlowKind::Forbidden => "forbidden",
            FlowKind::Unplanned => "unplanned",
        };
        flows.add_row([
            result.to_owned(),
            kind.to_owned(),
            format!("{} -> {}", check.flow.from, check.flow.to),
            format!("{}/{}", check.flow.protocol.aws_name(), check.flow.port),
            detail,
        ]);
    }
    say!("Flows of {}\n{flows}", report.topology);
    if !report.findings.is_empty() {
        let mut findings = table(["Severity", "Lint", "Where", "Finding", ""]);
        for finding in &report.findings {
            let severity = match finding.severity {
                Severity::Violation => "VIOLATION",
                Severity::Warning => "warning",
            };
            findings.add_row([
                severity.to_owned(),
                finding.code.to_owned(),
                finding.place.clone(),
                finding.message.clone(),
                String::new(),
            ]);
        }
        say!("\nFindings\n{findings}");
    }
    say!(
        "\n{} violation(s), {} warning(s)",
        report.violations(),
        report.warnings()
    );
}

fn print_diagnosis(diagnosis: &Diagnosis, topology: &Topology) {
    let planned = match diagnosis.planned {
        Some(kind) => format!(" (the plan lists it as {kind})"),
        None => String::new(),
    };
    let state = match (diagnosis.reachable, diagnosis.allowed) {
        (true, _) => "ALLOWED",
        (false, true) => "BLOCKED (the groups allow it)",
        (false, false) => "BLOCKED",
    };
    say!(
        "{} -> {} {}/{}: {state}{planned}",
        diagnosis.from,
        diagnosis.to,
        diagnosis.protocol.aws_name(),
        diagnosis.port
    );
    for rule in &diagnosis.allowed_by {
        say!(
            "  let through by {} rule {} of {}: {}",
            rule.direction.name(),
            rule.index,
            rule.group,
            rule.description
        );
    }
    if !diagnosis.blockers.is_empty() {
        let mut blockers = table(["#", "Blocker", "Code", "Where", "Reason"]);
        for (n, blocker) in diagnosis.blockers.iter().enumerate() {
            blockers.add_row([
                (n + 1).to_string(),
                blocker.kind.name().to_owned(),
                blocker.code.to_owned(),
                blocker.component.clone(),
                blocker.reason.clone(),
            ]);
        }
        say!("\n{blockers}");
    }
    if diagnosis.planned == Some("forbidden") && !diagnosis.allowed {
        say!("  This is as the plan wants: do not add rules for it.");
    }
    for command in &diagnosis.revokes {
        say!(
            "\n  The plan forbids this flow. Close it with `membrain network apply`, or:\n    {command}"
        );
    }
    for (n, blocker) in diagnosis.blockers.iter().enumerate() {
        if let Some(fix) = &blocker.fix {
            say!(
                "\n  {}. Missing: an {} rule on {} ({}): {} {} {} {}",
                n + 1,
                fix.direction.name(),
                fix.group,
                fix.group_name,
                fix.rule.type_name(),
                fix.rule.protocol_label(),
                fix.rule.port_label(),
                peer_label(&fix.rule.peer, topology),
            );
            say!(
                "     Add it with `membrain network apply`, or:\n       {}",
                fix.command
            );
        }
        if let Some(advice) = &blocker.advice {
            say!("\n  {}. {}: {advice}", n + 1, blocker.kind.name());
        }
    }
    say!("\n  Also check:");
    for check in &diagnosis.also_check {
        say!("    - {check}");
    }
}

/// Writes `text` to `output`, or standard output.
pub fn write_output(text: &str, output: Option<&Path>) -> Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            crate::output::write(format_args!("{text}"));
            Ok(())
        }
    }
}
