//! OpenTelemetry traces over OTLP/HTTP (protobuf), configured by the standard variables:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`…/v1/traces` appended) or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) turn export on; `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`(`_ARG`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT` and `OTEL_BSP_*` (batching) are read by the SDK;
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceExportError {
    #[error("setting up the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error(
        "{variable}={value:?}: only the http/protobuf OTLP protocol is built in; set it to http/protobuf or unset it"
    )]
    Protocol {
        variable: &'static str,
        value: String,
    },
}

/// The tracer provider while traces are exported; [`TraceExport::shutdown`] flushes it.
#[derive(Debug)]
pub struct TraceExport {
    provider: SdkTracerProvider,
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

impl TraceExport {
    /// Traces as the environment configures them: `None` when no OTLP endpoint is set (or the
    /// SDK or the trace exporter is turned off). `service_name` is used when neither
    /// `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names the service.
    pub fn from_environment(service_name: &str) -> Result<Option<Self>, TraceExportError> {
        let endpoint = variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| variable("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = variable("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || variable("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if endpoint.is_none() || disabled {
            return Ok(None);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = variable(name)
                && value != "http/protobuf"
            {
                return Err(TraceExportError::Protocol {
                    variable: if name.contains("TRACES") {
                        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
                    } else {
                        "OTEL_EXPORTER_OTLP_PROTOCOL"
                    },
                    value,
                });
            }
        }
        // The exporter reads the endpoint, headers, timeout and compression variables itself.
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?;
        let named_by_environment = variable("OTEL_SERVICE_NAME").is_some()
            || variable("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("service.name="));
        let mut resource = Resource::builder();
        if !named_by_environment {
            resource = resource.with_service_name(service_name.to_owned());
        }
        // The batch processor exports from a thread of its own, so a slow collector never
        // holds a request; the sampler comes from OTEL_TRACES_SAMPLER (parent-based
        // always-on by default, so a caller's sampled trace is followed).
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Self { provider }))
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans of this provider.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, Tracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("membrain"))
            .with_threads(false)
    }

    /// Exports what is still buffered and stops the exporter. Blocks (up to the SDK's timeout):
    /// call it from a blocking thread or after the runtime stopped.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("warning: exporting the last traces failed: {error}");
        }
    }
}
