public import CoreMetrics
import Foundation
public import JobVocabulary
public import Prometheus

/// What the daemon measures, named as Prometheus shows it. Built on swift-metrics with the
/// factory passed in, so nothing is global: a daemon without `MEDIA_WORKER_METRICS_ADDR` uses the
/// no-op factory.
public struct WorkerMetrics: Sendable {
    private let factory: any MetricsFactory
    // The metrics without per-job labels, made once: the main loop records some on every pass.
    private let jobsRunning: CoreMetrics.Gauge
    private let inputBytes: CoreMetrics.Counter
    private let outputBytes: CoreMetrics.Counter
    private let rescues: CoreMetrics.Counter
    private let depthByStatus: [(status: JobStatus, gauge: CoreMetrics.Gauge)]

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        jobsRunning = Gauge(label: "media_worker_jobs_running", factory: factory)
        inputBytes = Counter(label: "media_worker_input_bytes_total", factory: factory)
        outputBytes = Counter(label: "media_worker_output_bytes_total", factory: factory)
        rescues = Counter(label: "media_worker_rescues_total", factory: factory)
        depthByStatus = [JobStatus.pending, .processing].map {
            ($0, Gauge(label: "media_worker_queue_depth", dimensions: [("status", $0.rawValue)], factory: factory))
        }
    }

    /// A Prometheus registry and a factory writing into it, with buckets suited to video jobs.
    public static func prometheus() -> (WorkerMetrics, PrometheusCollectorRegistry) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "media_worker_job_duration_seconds": [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600].map { .seconds($0) },
            "media_worker_stage_duration_seconds": [0.05, 0.25, 1, 5, 15, 60, 300, 1800].map { .seconds($0) },
            "media_worker_time_to_stills_seconds": [0.25, 0.5, 1, 2, 5, 10, 30, 120].map { .seconds($0) },
        ]
        factory.valueHistogramBuckets = ["media_worker_realtime_factor": [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]]
        return (WorkerMetrics(factory: factory), registry)
    }

    /// A job ended: `outcome` is completed, failed, retrying, cancelled, released, fencedOff or unrecorded.
    public func jobFinished(type: ProcessingType, outcome: String, duration: Duration) {
        Counter(
            label: "media_worker_jobs_finished_total", dimensions: [("type", type.rawValue), ("outcome", outcome)],
            factory: factory
        )
        .increment()
        Timer(label: "media_worker_job_duration_seconds", dimensions: [("type", type.rawValue)], factory: factory)
            .recordNanoseconds(duration.inNanoseconds)
    }

    /// One step of a job: download, process (the child), upload, record.
    public func stage(_ stage: String, duration: Duration) {
        Timer(label: "media_worker_stage_duration_seconds", dimensions: [("stage", stage)], factory: factory)
            .recordNanoseconds(duration.inNanoseconds)
    }

    /// Seconds of media processed per second of processing.
    public func realtimeFactor(type: ProcessingType, _ factor: Double) {
        Recorder(label: "media_worker_realtime_factor", dimensions: [("type", type.rawValue)], factory: factory)
            .record(factor)
    }

    public func bytesDownloaded(_ bytes: Int64) { inputBytes.increment(by: max(0, bytes)) }

    public func bytesUploaded(_ bytes: Int64) { outputBytes.increment(by: max(0, bytes)) }

    /// A failed attempt that will be retried, by error code.
    public func retry(code: FailureCode) {
        Counter(label: "media_worker_retries_total", dimensions: [("code", code.rawValue)], factory: factory)
            .increment()
    }

    /// A job that copied an earlier job's outputs (the same bytes) instead of making them.
    public func reused() {
        Counter(label: "media_worker_reuse_hits_total", factory: factory).increment()
    }

    /// From a job's start to its stills being published.
    public func timeToStills(_ duration: Duration) {
        Timer(label: "media_worker_time_to_stills_seconds", factory: factory).recordNanoseconds(
            duration.inNanoseconds)
    }

    /// Abandoned jobs this worker put back in the queue.
    public func rescued(_ count: Int) {
        if count > 0 { rescues.increment(by: count) }
    }

    public func running(_ count: Int) { jobsRunning.record(count) }

    /// Jobs waiting and running (all workers' view of the queue).
    public func queueDepth(_ depth: [JobStatus: Int]) {
        for (status, gauge) in depthByStatus { gauge.record(depth[status] ?? 0) }
    }
}
