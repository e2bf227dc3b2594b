//! `membrain ts import | export | demo`: records in and out through the REST API, in batches,
//! with a progress bar on standard error.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use membrain_timeseries::transfer::{
    CsvOptions, CsvReader, CsvWriter, JsonLinesReader, JsonLinesWriter,
};
use membrain_timeseries::{
    AttributeName, Dimensions, MeasureType, MeasureValue, Record, Span, TableSchema, Timestamp,
    WriteLimits,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{TableName, TsClient};
use crate::cli::TsFormat;
use crate::output::say;

/// Totals of an import or a demo run.
#[derive(Debug, Default)]
struct Tally {
    ingested: u64,
    rejected: u64,
    unreadable: u64,
    /// The first few reasons, to show.
    reasons: Vec<String>,
}

impl Tally {
    const SHOWN: usize = 10;

    fn note(&mut self, reason: String) {
        if self.reasons.len() < Self::SHOWN {
            self.reasons.push(reason);
        }
    }
}

/// Writes one batch and adds its outcome to `tally`; `first_index` maps rejections back to
/// input positions for the messages.
async fn write_batch(
    client: &TsClient,
    table: &TableName,
    batch: &[Record],
    labels: &[String],
    tally: &mut Tally,
) -> Result<()> {
    let records: Vec<Value> = batch.iter().map(Record::to_json).collect();
    let answer = client
        .table_call(table, "records", json!({ "records": records }))
        .await?;
    tally.ingested += answer["records_ingested"].as_u64().unwrap_or(0);
    for rejection in answer["rejected_records"].as_array().into_iter().flatten() {
        tally.rejected += 1;
        let index = rejection["record_index"].as_u64().unwrap_or(0) as usize;
        let label = labels.get(index).map(String::as_str).unwrap_or("?");
        tally.note(format!(
            "{label}: {}",
            rejection["reason"].as_str().unwrap_or("rejected")
        ));
    }
    Ok(())
}

fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(&format!(
                "{what} [{{bar:32}}] {{percent:>3}}% {{msg}} ({{eta}} left)"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{what} {{spinner}} {{msg}}"))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Counts bytes read, for a progress bar over a file of known size.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bar.inc(read as u64);
        Ok(read)
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn import(
    client: &TsClient,
    table: &TableName,
    file: &Path,
    format: Option<TsFormat>,
    dimensions: &[String],
    batch_size: usize,
    json_output: bool,
    shutdown: &CancellationToken,
) -> Result<()> {
    let format = format.unwrap_or_else(|| {
        let csv = file
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        if csv { TsFormat::Csv } else { TsFormat::Jsonl }
    });
    let (input, size): (Box<dyn Read>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let handle = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let size = handle.metadata().ok().map(|m| m.len());
        (Box::new(handle), size)
    };
    let bar = progress(size, "importing");
    let input = BufReader::new(Counted {
        inner: input,
        bar: bar.clone(),
    });
    let limits = WriteLimits::default();
    let records: Box<dyn Iterator<Item = _>> = match format {
        TsFormat::Jsonl => Box::new(JsonLinesReader::new(input, limits)),
        TsFormat::Csv => {
            let dimensions = dimensions
                .iter()
                .map(|name| AttributeName::parse(name.trim()))
                .collect::<Result<BTreeSet<_>, _>>()
                .map_err(|e| anyhow::anyhow!("--dimensions: {e}"))?;
            Box::new(CsvReader::new(input, CsvOptions { dimensions, limits }))
        }
    };
    let batch_size = batch_size.clamp(1, WriteLimits::default().max_records);
    let mut tally = Tally::default();
    let mut batch = Vec::with_capacity(batch_size);
    let mut labels = Vec::with_capacity(batch_size);
    for (position, record) in records.enumerate() {
        if shutdown.is_cancelled() {
            bar.abandon_with_message("interrupted");
            bail!("interrupted after {} records", tally.ingested);
        }
        match record {
            Ok(record) => {
                batch.push(record);
                labels.push(format!("record {}", position + 1));
            }
            Err(error) => {
                tally.unreadable += 1;
                tally.note(error.to_string());
            }
        }
        if batch.len() == batch_size {
            write_batch(client, table, &batch, &labels, &mut tally).await?;
            bar.set_message(format!("{} written", tally.ingested));
            batch.clear();
            labels.clear();
        }
    }
    if !batch.is_empty() {
        write_batch(client, table, &batch, &labels, &mut tally).await?;
    }
    bar.finish_and_clear();
    if json_output {
        say!(
            "{}",
            json!({
                "records_ingested": tally.ingested, "rejected": tally.rejected,
                "unreadable": tally.unreadable, "first_problems": tally.reasons,
            })
        );
    } else {
        say!(
            "Imported {} records into {}.{} ({} rejected, {} unreadable lines).",
            tally.ingested,
            table.database,
            table.table,
            tally.rejected,
            tally.unreadable
        );
        for reason in &tally.reasons {
            say!("  {reason}");
        }
    }
    if tally.ingested == 0 && (tally.rejected > 0 || tally.unreadable > 0) {
        bail!("nothing was imported");
    }
    Ok(())
}

/// The table's schema from its description, so exported values keep their types.
fn schema_from_description(description: &Value) -> Result<TableSchema> {
    let mut schema = TableSchema::default();
    for name in description["dimensions"].as_array().into_iter().flatten() {
        schema
            .dimensions
            .insert(AttributeName::parse(name.as_str().unwrap_or_default())?);
    }
    for measure in description["measures"].as_array().into_iter().flatten() {
        let name = AttributeName::parse(measure["name"].as_str().unwrap_or_default())?;
        let kind = MeasureType::parse(measure["type"].as_str().unwrap_or_default())
            .context("the API described a measure of an unknown type")?;
        schema.measures.insert(name, kind);
    }
    Ok(schema)
}

/// A record from a range answer's `{time, measures}` point of a series.
fn record_from_point(
    schema: &TableSchema,
    dimensions: &Dimensions,
    point: &Value,
) -> Result<Record> {
    let time = Timestamp::parse(point["time"].as_str().unwrap_or_default())?;
    let mut measures = Vec::new();
    for (name, value) in point["measures"].as_object().into_iter().flatten() {
        let name = AttributeName::parse(name)?;
        let kind = schema.measures.get(&name).copied();
        let value = MeasureValue::from_json(value, kind)
            .map_err(|reason| anyhow::anyhow!("measure {name}: {reason}"))?;
        measures.push((name, value));
    }
    measures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Record {
        time,
        dimensions: dimensions.clone(),
        measures,
    })
}

fn dimensions_of(series: &Value) -> Result<Dimensions> {
    let mut pairs = Vec::new();
    for (name, value) in series["dimensions"].as_object().into_iter().flatten() {
        pairs.push((
            AttributeName::parse(name)?,
            value.as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(Dimensions::new(pairs))
}

enum Sink<W: Write> {
    Jsonl(JsonLinesWriter<W>),
    Csv(Box<CsvWriter<W>>),
}

impl<W: Write> Sink<W> {
    fn write(&mut self, record: &Record) -> std::io::Result<()> {
        match self {
            Self::Jsonl(writer) => writer.write(record),
            Self::Csv(writer) => writer.write(record),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Jsonl(writer) => writer.finish().map(drop),
            Self::Csv(writer) => writer.finish().map(drop),
        }
    }
}

/// Reads the table window by window through the range call: a window whose answer was cut by
/// the server's point cap is halved and asked again; a light one doubles the next.
pub async fn export(
    client: &TsClient,
    table: &TableName,
    format: TsFormat,
    output: Option<&Path>,
    start: Option<String>,
    end: Option<String>,
) -> Result<()> {
    let description = client.describe(table).await?;
    let schema = schema_from_description(&description)?;
    let rows = description["row_count"].as_u64().unwrap_or(0);
    let parse_bound =
        |raw: Option<String>, fallback: &Value, shift: i64| -> Result<Option<Timestamp>> {
            match raw {
                Some(raw) => Ok(Some(membrain_timeseries::service::parse_time(
                    "start/end",
                    &raw,
                )?)),
                None => Ok(fallback
                    .as_str()
                    .and_then(|t| Timestamp::parse(t).ok())
                    .map(|t| t.plus_micros(shift))),
            }
        };
    let start = parse_bound(start, &description["earliest"], 0)?;
    let end = parse_bound(end, &description["latest"], 1)?;
    let writer: Box<dyn Write> = match output {
        Some(path) => Box::new(BufWriter::new(
            crate::commands::transfer::private_file(path)
                .with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut sink = match format {
        TsFormat::Jsonl => Sink::Jsonl(JsonLinesWriter::new(writer)),
        TsFormat::Csv => Sink::Csv(Box::new(CsvWriter::new(writer, &schema)?)),
    };
    let (Some(start), Some(end)) = (start, end) else {
        sink.finish()?;
        eprintln!("{}.{} has no records.", table.database, table.table);
        return Ok(());
    };
    let bar = progress(Some(rows), "exporting");
    let mut window = Span::from_secs(3_600).as_micros();
    let mut at = start;
    let mut written = 0u64;
    while at < end {
        let until = at.plus_micros(window).min(end);
        let answer = client
            .table_call(
                table,
                "range",
                json!({ "start": at.to_rfc3339(), "end": until.to_rfc3339() }),
            )
            .await?;
        if answer["truncated"].as_bool() == Some(true) && window > 1 {
            window /= 2;
            continue;
        }
        let mut points = 0u64;
        for series in answer["series"].as_array().into_iter().flatten() {
            let dimensions = dimensions_of(series)?;
            for point in series["points"].as_array().into_iter().flatten() {
                sink.write(&record_from_point(&schema, &dimensions, point)?)
                    .context("writing the export")?;
                points += 1;
            }
        }
        written += points;
        bar.inc(points);
        if points < 2_500 {
            window = window.saturating_mul(2);
        }
        at = until;
    }
    sink.finish().context("writing the export")?;
    bar.finish_and_clear();
    eprintln!(
        "Exported {written} records of {}.{}.",
        table.database, table.table
    );
    Ok(())
}

/// `membrain ts demo transit`: backfills `hours` up to now, then (with `--live`) writes each new
/// interval as it passes. The data is a function of time, so a restarted live feed continues
/// seamlessly and a repeated window is accepted unchanged.
pub async fn demo(
    client: &TsClient,
    command: crate::cli::TsDemoCommand,
    shutdown: &CancellationToken,
) -> Result<()> {
    use membrain_timeseries::demo::transit::TransitDemo;
    let crate::cli::TsDemoCommand::Transit {
        hours,
        live,
        interval,
        seed,
        batch,
    } = command;
    if !(0.0..=24.0 * 366.0).contains(&hours) {
        bail!("--hours must be between 0 and 8784 (a year)");
    }
    let interval = Span::parse(&interval).map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    let interval = Duration::from_micros(interval.as_micros().max(1_000_000) as u64);
    let batch = batch.clamp(1, WriteLimits::default().max_records);
    let demo = TransitDemo::new(seed);
    let end = Timestamp::now();
    let start = end.plus_micros(-((hours * 3_600_000_000.0) as i64));
    let mut total = 0;
    for table in demo.tables() {
        total += demo.record_count(&table, start, end)?;
    }
    let bar = progress(Some(total), "writing transit");
    let mut tally = Tally::default();
    write_window(
        client,
        &demo,
        start,
        end,
        batch,
        &mut tally,
        Some(&bar),
        shutdown,
    )
    .await?;
    bar.finish_and_clear();
    say!(
        "Wrote {} records ({:.1} hours) into transit.bus_position, transit.people_count and transit.sensor_data{}.",
        tally.ingested,
        hours,
        if tally.rejected > 0 {
            format!(" ({} rejected)", tally.rejected)
        } else {
            String::new()
        }
    );
    for reason in &tally.reasons {
        say!("  {reason}");
    }
    if !live {
        say!(
            "Ask away: membrain ts latest transit.people_count, or through MCP (ts_latest, ts_range, ts_query)."
        );
        return Ok(());
    }
    say!(
        "Live: writing new records every {}s (Ctrl-C to stop).",
        interval.as_secs()
    );
    let mut from = end;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = Timestamp::now();
        let mut tally = Tally::default();
        write_window(client, &demo, from, now, batch, &mut tally, None, shutdown).await?;
        say!("{}  +{} records", now, tally.ingested);
        from = now;
    }
    say!("Stopped.");
    Ok(())
}

/// Writes every demo record of `[start, end)` in batches.
#[allow(clippy::too_many_arguments)]
async fn write_window(
    client: &TsClient,
    demo: &membrain_timeseries::demo::transit::TransitDemo,
    start: Timestamp,
    end: Timestamp,
    batch_size: usize,
    tally: &mut Tally,
    bar: Option<&ProgressBar>,
    shutdown: &CancellationToken,
) -> Result<()> {
    for table in demo.tables() {
        let name = TableName {
            database: table.database.to_string(),
            table: table.table.to_string(),
        };
        let mut batch = Vec::with_capacity(batch_size);
        let mut records = demo.records(&table, start, end)?.peekable();
        while records.peek().is_some() {
            if shutdown.is_cancelled() {
                bail!("interrupted after {} records", tally.ingested);
            }
            batch.clear();
            batch.extend(records.by_ref().take(batch_size));
            let labels: Vec<String> = (0..batch.len())
                .map(|_| format!("{}.{}", name.database, name.table))
                .collect();
            write_batch(client, &name, &batch, &labels, tally).await?;
            if let Some(bar) = bar {
                bar.inc(batch.len() as u64);
            }
        }
    }
    Ok(())
}
