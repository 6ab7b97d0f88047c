// Sends the trace of trace.json to EvalHub with one of the OpenTelemetry JS exporters, the way a
// Node.js application would. Configured by the environment:
//   EXPORTER  http-json (@opentelemetry/exporter-trace-otlp-http), http-proto
//             (@opentelemetry/exporter-trace-otlp-proto) or phoenix (@arizeai/phoenix-otel)
//   ENDPOINT  EvalHub's base URL, e.g. http://127.0.0.1:8000
//   API_KEY, PROJECT, GZIP (1 or 0)
// Prints {"result": 0|1, "error": ...} (0 is SUCCESS) and exits non-zero when the export failed.
import { readFileSync } from "node:fs";
import { context, trace, SpanStatusCode } from "@opentelemetry/api";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

const { EXPORTER, ENDPOINT, API_KEY, PROJECT, GZIP } = process.env;
const definition = JSON.parse(readFileSync(new URL("./trace.json", import.meta.url), "utf8"));
const base = BigInt(definition.start_unix_nano);

// An OpenTelemetry HrTime ([seconds, nanoseconds]) at `offset` nanoseconds after the start.
function hrTime(offset) {
  const total = base + BigInt(offset);
  return [Number(total / 1_000_000_000n), Number(total % 1_000_000_000n)];
}

const results = [];
class Recording {
  constructor(exporter) {
    this.exporter = exporter;
  }
  export(spans, done) {
    this.exporter.export(spans, (result) => {
      results.push(result);
      done(result);
    });
  }
  shutdown() {
    return this.exporter.shutdown();
  }
  forceFlush() {
    return this.exporter.forceFlush?.() ?? Promise.resolve();
  }
}

async function provider() {
  const options = {
    url: `${ENDPOINT}/v1/traces`,
    headers: { api_key: API_KEY },
    compression: GZIP === "1" ? "gzip" : "none",
  };
  const resource = resourceFromAttributes({
    "service.name": "node-matrix",
    "openinference.project.name": PROJECT,
  });
  if (EXPORTER === "phoenix") {
    // Its exporter takes compression from the standard OpenTelemetry variable.
    process.env.OTEL_EXPORTER_OTLP_COMPRESSION = GZIP === "1" ? "gzip" : "none";
    const { register } = await import("@arizeai/phoenix-otel");
    // Phoenix's own set-up: its exporter (OTLP protobuf over HTTP) and processor.
    return register({
      projectName: PROJECT,
      url: ENDPOINT,
      apiKey: API_KEY,
      batch: false,
      global: false,
    });
  }
  const Exporter = { "http-json": JsonExporter, "http-proto": ProtoExporter }[EXPORTER];
  if (!Exporter) throw new Error(`unknown EXPORTER ${EXPORTER}`);
  return new BasicTracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor(new Recording(new Exporter(options)))],
  });
}

function status(definition) {
  const code = { UNSET: SpanStatusCode.UNSET, OK: SpanStatusCode.OK, ERROR: SpanStatusCode.ERROR };
  return { code: code[definition.code], message: definition.message };
}

const tracerProvider = await provider();
const tracer = tracerProvider.getTracer("evalhub-node-matrix");
const spans = {};
for (const item of definition.spans) {
  const parent = item.parent ? trace.setSpan(context.active(), spans[item.parent]) : context.active();
  spans[item.name] = tracer.startSpan(
    item.name,
    { startTime: hrTime(item.start), attributes: item.attributes },
    parent,
  );
}
// Children end first, as they do in an application.
for (const item of [...definition.spans].reverse()) {
  const span = spans[item.name];
  for (const event of item.events) span.addEvent(event.name, event.attributes, hrTime(event.time));
  if (item.status.code !== "UNSET") span.setStatus(status(item.status));
  span.end(hrTime(item.end));
}
await tracerProvider.forceFlush();
await tracerProvider.shutdown();
const failed = results.find((r) => r.code !== 0);
console.log(JSON.stringify({ result: failed ? 1 : 0, exports: results.length, error: failed?.error?.message }));
process.exit(failed ? 1 : 0);
